"""``reliability run``: a scenario (or a suite of them) as a local runner, or a master with workers.

``commands`` builds the Locust command lines (pure), ``swarm`` starts, watches and stops the
processes, ``single`` runs one scenario's processes to an exit code, ``sequence`` runs a suite,
and ``cli`` only parses the command line and dispatches to those two. Nothing here imports
locust: the command runs Locust in child processes, so this process stays free of gevent's
monkey-patching.
"""
