"""The edges: the `chitty` CLI, the aiohttp gateway, the MCP server and the client library."""
