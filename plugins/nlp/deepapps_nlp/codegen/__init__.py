"""AlphaCode-style code generation: sample many programs, filter them on the problem's examples,
cluster the survivors by behaviour, submit one per large cluster; and the sandbox that runs them.

``import deepapps_nlp.codegen`` stays light (no torch); see :mod:`.pipeline`, :mod:`.sandbox`.
"""
