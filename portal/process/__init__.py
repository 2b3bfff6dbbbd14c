"""Process control for the portal: start, watch, restart and stop external servers.

This package never imports Django or Celery, so that the keeper process (see
``keeper.py``) starts fast and can run detached from any worker. The Django side
only calls the small public API:

* :mod:`portal.process.spec` - :class:`Spec`, what to run;
* :mod:`portal.process.keeper` - ``launch``, ``adopt``, ``request_stop``,
  ``read_status``, ``read_events``, ``wait_for``, ``keeper_alive``, ``reconcile``;
* :mod:`portal.process.states` - the state names and allowed transitions;
* :mod:`portal.process.checks` - checks to run before a start;
* :mod:`portal.process.logtail` - tail and follow a log file across rotation.

Nothing is imported here on purpose: ``python -m portal.process.keeper`` imports
this file first, and each import costs start-up time.
"""
