"""Reverts that always happen: the revert journal, the undo actions and the out-of-process guard.

* :mod:`reliability.revert.journal` writes, before each fault is injected, how to undo it (an
  append-only JSON-lines file, fsynced line by line) and reads it back;
* :mod:`reliability.revert.undo` performs those undo actions (HTTP calls, Redis commands, commands,
  signals) from any process, with secrets taken from the environment at undo time;
* :mod:`reliability.revert.guard` is the small detached process that undoes what a dead or hung
  master left applied;
* :mod:`reliability.revert.ledger` is the master's side: journal, guard and lease for one run.

Nothing in this package imports locust or gevent (the guard must stay small and independent of
the process it watches).
"""
