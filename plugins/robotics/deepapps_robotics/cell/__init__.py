"""The simulated pick-and-place cell: world, arm, perception, controller, runner, training views."""
