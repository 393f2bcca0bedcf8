"""semcode's MCP server (``semcode mcp``): a front door over the core ``semcode``, for code chatbots and agents."""
