"""Experiments: an agent searches for programs over one or more tasks, one actor per task on the worker pool.

The top layer of the web apps (worker <- accounts <- sharing <- runs <- skills <- experiments): it drives
the search (coordinator.py: the run's and actors' state machine on Celery; rounds.py: one round's
proposals; workbench.py: what agents read and run; agents.py: which agent), hands proposed skills to the
skill library, and owns the experiment pages, forms and API endpoints.

Its rows are the runs app's models (Run of an experiment kind, Actor, Candidate, AgentCall): they stay in
runs/ because moving them here would need a data migration of existing databases (new tables, copied
rows, re-pointed foreign keys from skills and sharing). This app therefore has no models of its own.
"""
