"""``reliability run``: a scenario (or a suite of them) as a local runner, or a master with workers.

``commands`` builds the Locust command lines (pure), ``swarm`` starts, watches and stops the
processes, ``cli`` is the command itself. Nothing here imports locust: the command runs Locust in
child processes, so this process stays free of gevent's monkey-patching.
"""
