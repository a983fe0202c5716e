"""Helpers of the project's own tests (not part of the installed package).

``tests/`` is on pytest's ``pythonpath``, so tests import ``from support.xxx import ...``;
subprocess workers get the same sys.path through ``worker_environment()``, which is how they
import executors from ``support.executors`` by reference. The fixtures shared by every test
folder (``orchestrators``, ``no_worker_left``) are in ``tests/conftest.py``.

Public helpers that users and notebooks need (the fake LLM server) stay in
``mission_widgets.testing``.
"""
