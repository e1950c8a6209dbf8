"""Hook implementations of the driving plugin (registered through the `deepapps` entry point)."""

from deepapps import hookimpl  # noqa: F401  (hooks are added here as the domain grows)
