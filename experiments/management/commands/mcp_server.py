"""``manage.py mcp_server --actor ID``: serve one mcp actor's workbench tools over stdio (MCP), for a
client that starts the server itself (``claude mcp add aspire -- python manage.py mcp_server --actor
ID``). The API token comes from ``ASPIRE_TOKEN`` or ``--token``; the command refuses, before serving
anything, a token that is not valid or whose user may not act for the actor, and an actor that is not
an mcp actor. experiments.mcp_server has the server; stdout carries the protocol, messages go to stderr.
"""

from __future__ import annotations

import os
import sys

import anyio
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from experiments.external import AccessRefused, Principal, authorize, user_for_token
from experiments.mcp_server import serve_stdio


class Command(BaseCommand):
    help = "Serve an mcp actor's workbench tools to an MCP client over stdio."

    def add_arguments(self, parser):
        parser.add_argument("--actor", type=int, required=True, help="the actor's id (its run's agent backend: mcp)")
        parser.add_argument(
            "--token", default="", help="your API token (default: the ASPIRE_TOKEN environment variable)"
        )

    def handle(self, *args, actor, token, **options):
        key = (token or os.environ.get("ASPIRE_TOKEN", "")).strip()
        if not key:
            raise CommandError("no API token: set ASPIRE_TOKEN or pass --token (make one on your account page)")
        user = user_for_token(key)
        if user is None:
            raise CommandError("the API token is not valid")
        try:
            found = authorize(user, actor)
        except AccessRefused as exc:
            raise CommandError(str(exc)) from None
        principal = Principal(user.pk, found.pk)
        sys.stderr.write(f"aspire MCP server (stdio): actor {found.pk}, {found.task.key}, run {found.run_id}\n")
        sys.stderr.flush()
        connections.close_all()  # tool calls run in worker threads, each with its own connection
        anyio.run(serve_stdio, principal)
