"""Claude over MCP: the hub's tools, resources and prompt, on stdio and streamable HTTP."""

from transports.mcp.server import build_server, serve_stdio

__all__ = ["build_server", "serve_stdio"]
