"""The workbench tools as an MCP server (the ``mcp`` Python SDK's low-level Server), so a person's own
MCP client (Claude Code, Codex, any other) can be the agent of an experiment's actor.

Tools: observe_task (the open round's brief), then the built-in agents' own tools
(worker.agents.tools.TOOLS: run_candidate, list_calls, get_call, get_keyframe, search_skills, read_skill,
submit_candidates, propose_skill) with the same descriptions and input schemas. Every call goes through
experiments.external.call_tool, which runs it with the same ToolRunner, budgets and access rules as the
built-in agents; its reply is the ToolOutcome's text (and a JPEG image content block for a keyframe).

Why the round does not block a worker: an ``mcp`` actor's round is briefed and left AWAITING its client
(experiments.external says how and why); this server only serves the client's calls, in the process the
client talks to. Nothing here waits on Celery.

Two transports, one server definition:

- stdio: ``manage.py mcp_server --actor ID`` (the API token from ``ASPIRE_TOKEN`` or ``--token``),
  :func:`serve_stdio`; the client starts it as a subprocess.
- streamable HTTP, mounted in the web app (aspire_web/asgi.py, :func:`mount`) at
  ``/mcp/actors/<actor id>/``, with the user's API token as ``Authorization: Token <key>`` (or
  ``Bearer <key>``). Every HTTP request is authenticated before the SDK sees it (401 without a valid
  token, 403 for an actor the token's user may not act for or that is not an mcp actor, 404 for another
  path). Stateless (no session kept between requests): any web process can serve any request, so a
  deployment with several web processes needs no session affinity. The SDK's session manager needs a
  running task group, which an ASGI lifespan would start; Daphne sends no lifespan events, so
  :class:`McpHttpApp` starts it on the first request, on the server's event loop, for the process's life.

Blocking work (database, the simulator for run_candidate, observe_task's wait) runs in worker threads
(anyio.to_thread), never on the event loop; each call closes its thread's database connections.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable

import anyio
import mcp_types as types
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from worker.agents.tools import ToolOutcome

from .external import AccessRefused, Principal, authorize, call_tool, tool_definitions, user_for_token

log = logging.getLogger(__name__)

NAME = "aspire"
INSTRUCTIONS = (
    "You are the agent of one actor of an ASPIRE experiment: you write robot control programs for its "
    "task, round by round. Call observe_task first: it gives the round's brief, the rules and the robot "
    "API. Test ideas with run_candidate (a few debug seeds, within the round's episode budget), read the "
    "calls a failure implicates (list_calls, get_call, get_keyframe), look up skills (search_skills, "
    "read_skill), then end the round with submit_candidates. The candidates are then evaluated on every "
    "debug seed; observe_task with wait_seconds waits for the next round. Propose generalisable repairs "
    "with propose_skill."
)
#: /mcp/actors/<id>/ (the trailing slash optional)
ACTOR_PATH = re.compile(r"^/mcp/actors/(\d+)/?$")
PREFIX = "/mcp"


def _result(outcome: ToolOutcome) -> types.CallToolResult:
    content: list = [types.TextContent(type="text", text=outcome.text)]
    if outcome.image_jpeg:
        content.append(types.ImageContent(type="image", data=outcome.image_b64(), mime_type="image/jpeg"))
    return types.CallToolResult(content=content, is_error=outcome.is_error)


def _client_name(ctx) -> str:
    """The client's name and version from its initialize request (stdio), else its User-Agent (stateless
    HTTP keeps no session to remember the initialize in)."""
    params = getattr(getattr(ctx, "session", None), "client_params", None)
    info = getattr(params, "client_info", None)
    if info is not None:
        return f"{info.name} {info.version or ''}".strip()[:100]
    request = getattr(ctx, "request", None)
    headers = getattr(request, "headers", None)
    if headers is not None:
        return (headers.get("user-agent") or "").split(" ")[0][:100]
    return ""


def _call_in_thread(principal: Principal, name: str, arguments: dict, client: str) -> ToolOutcome:
    close_old_connections()
    try:
        return call_tool(principal, name, arguments, client)
    finally:
        connections.close_all()  # this worker thread's connections only


def build_server(principal_of: Callable[[object], Principal]) -> Server:
    """The MCP server; ``principal_of(ctx)`` says who calls for which actor (raises AccessRefused)."""

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(name=t["name"], description=t["description"], input_schema=t["input_schema"])
                for t in tool_definitions()
            ]
        )

    async def on_call_tool(ctx, params) -> types.CallToolResult:
        try:
            principal = principal_of(ctx)
        except AccessRefused as exc:
            return _result(ToolOutcome(f"access refused: {exc}", is_error=True))
        arguments = dict(params.arguments or {})
        try:
            outcome = await anyio.to_thread.run_sync(
                _call_in_thread, principal, params.name, arguments, _client_name(ctx)
            )
        except Exception as exc:  # a bug or the database: the client sees a short error, the log the rest
            log.exception("MCP tool %s for actor %s failed", params.name, principal.actor_id)
            outcome = ToolOutcome(f"{params.name} failed: {type(exc).__name__}: {exc}"[:2000], is_error=True)
        return _result(outcome)

    return Server(NAME, instructions=INSTRUCTIONS, on_list_tools=list_tools, on_call_tool=on_call_tool)


# -- stdio --------------------------------------------------------------------------------------------
async def serve_stdio(principal: Principal) -> None:
    """Serve ``principal``'s actor over this process's stdin/stdout until the client closes them."""
    server = build_server(lambda ctx: principal)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


# -- streamable HTTP ----------------------------------------------------------------------------------
def _principal_from_request(ctx) -> Principal:
    request = getattr(ctx, "request", None)
    principal = request.scope.get("aspire_mcp") if request is not None else None
    if principal is None:
        raise AccessRefused("this request was not authenticated")
    return principal


class _Unauthenticated(Exception):
    pass


def _authenticate(key: str, actor_id: int) -> Principal:
    user = user_for_token(key) if key else None
    if user is None:
        raise _Unauthenticated()
    actor = authorize(user, actor_id)
    return Principal(user.pk, actor.pk)


def _authenticate_in_thread(key: str, actor_id: int) -> Principal:
    try:
        return _authenticate(key, actor_id)
    finally:
        close_old_connections()


def _token_of(headers: dict[str, str]) -> str:
    value = headers.get("authorization", "")
    scheme, _, key = value.partition(" ")
    return key.strip() if scheme.lower() in ("token", "bearer") else ""


async def _answer(send, status: int, message: str, extra: list | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


def _host_allowed(headers: dict[str, str]) -> bool:
    from django.http.request import split_domain_port, validate_host

    domain, _port = split_domain_port(headers.get("host", ""))
    allowed = list(settings.ALLOWED_HOSTS) + (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    return bool(domain) and validate_host(domain, allowed)


class McpHttpApp:
    """The streamable HTTP transport as an ASGI app for ``/mcp/actors/<id>/`` (see the module docstring)."""

    def __init__(self):
        self.server = build_server(_principal_from_request)
        self._manager: StreamableHTTPSessionManager | None = None
        self._loop = None
        self._started: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    async def __call__(self, scope, receive, send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not _host_allowed(headers):
            await _answer(send, 400, "this host is not in ALLOWED_HOSTS")
            return
        match = ACTOR_PATH.match(scope.get("path", ""))
        if match is None:
            await _answer(send, 404, "the MCP endpoint of an actor is /mcp/actors/<actor id>/")
            return
        try:
            principal = await sync_to_async(_authenticate_in_thread)(_token_of(headers), int(match.group(1)))
        except _Unauthenticated:
            await _answer(
                send,
                401,
                "send your API token as 'Authorization: Token <key>' (or Bearer)",
                [(b"www-authenticate", b'Token realm="aspire"')],
            )
            return
        except AccessRefused as exc:
            await _answer(send, 403, str(exc))
            return
        manager = await self._running_manager()
        await manager.handle_request({**scope, "aspire_mcp": principal}, receive, send)

    async def _running_manager(self) -> StreamableHTTPSessionManager:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first request (or a new event loop, e.g. a test's): start one there
            self._loop = loop
            self._manager = StreamableHTTPSessionManager(app=self.server, stateless=True)
            self._started = asyncio.Event()
            self._task = loop.create_task(self._run(self._manager, self._started))
        await self._started.wait()
        return self._manager

    @staticmethod
    async def _run(manager: StreamableHTTPSessionManager, started: asyncio.Event) -> None:
        try:
            async with manager.run():
                started.set()
                await asyncio.Event().wait()  # for the life of the process
        except Exception:
            log.exception("the MCP session manager stopped")
        finally:
            started.set()


def mount(django_app, prefix: str = PREFIX):
    """``django_app`` with the MCP endpoint in front of it: requests under ``prefix`` go to McpHttpApp."""
    mcp_app = McpHttpApp()

    async def app(scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == prefix or path.startswith(prefix + "/")):
            await mcp_app(scope, receive, send)
            return
        await django_app(scope, receive, send)

    app.mcp = mcp_app
    return app
