"""The skill library's plain-Python core, shared by the engine's agents (worker.agents, worker.search)
and the Django skills app, so both read traces and skills the same way:

- ``signals``: the one failure-signal extractor (what an episode's trace shows about how it failed);
- ``signatures``: a skill's failure signature (normalising, reading stored ones) and matching it to
  observed signals;
- ``sketch``: code sketches and their ``{{NAME}}`` placeholders (declaring, validating, filling).

No Django imports: the engine (worker/) stays plain Python.
"""
