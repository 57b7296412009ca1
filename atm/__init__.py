"""Composition roots: the ``atm`` command, the demo, and (later) the console and scenario runner.

This is the only package that imports all of ``device``, ``drivers``, ``host``, ``protocol``
and ``simulators``. It stays thin: it reads configuration, builds objects and runs them.
"""
