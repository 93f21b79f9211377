"""Connects to the demo kubegate with the official Python MCP SDK, in one protocol mode, as
alice (tenant team-a), and checks what a user of the SDK would: the tools she may use are
listed and the others are not, her call runs, and a call policy refuses comes back refused.

    python python_sdk.py legacy|2026-07-28|auto     (KUBEGATE_URL, KUBEGATE_CA, TOKEN_ALICE)
"""

import asyncio
import os
import sys

import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client


async def check(mode: str) -> None:
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {os.environ['TOKEN_ALICE']}"},
        verify=os.environ["KUBEGATE_CA"],
    )
    transport = streamable_http_client(os.environ["KUBEGATE_URL"], http_client=http)
    async with Client(transport, mode=mode) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert "list-resources" in names and "get-logs" in names, names
        assert "delete_namespace" not in names, f"alice may not delete namespaces: {names}"
        mine = await client.call_tool(
            "list-resources", {"resourceType": "pods", "namespace": "team-a"}
        )
        text = mine.content[0].text
        assert not mine.is_error and 'pods in namespace "team-a"' in text, text
        theirs = await client.call_tool(
            "list-resources", {"resourceType": "pods", "namespace": "team-b"}
        )
        refusal = theirs.content[0].text
        assert theirs.is_error and "no policy permits it" in refusal, refusal
        prompt = await client.get_prompt(
            "troubleshoot-pod", {"podName": "web-1", "namespace": "team-a"}
        )
        assert "get-logs" in prompt.messages[0].content.text
    print(f"python sdk ({mode}): {len(names)} tools listed, calls decided as alice")


if __name__ == "__main__":
    asyncio.run(check(sys.argv[1]))
