// Connects to the demo kubegate with the official TypeScript MCP SDK as alice (tenant team-a)
// and checks what a user of the SDK would: her tools are listed, her call runs, and a call
// policy refuses comes back refused. Needs KUBEGATE_URL, TOKEN_ALICE (and NODE_EXTRA_CA_CERTS).
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const transport = new StreamableHTTPClientTransport(new URL(process.env.KUBEGATE_URL), {
  requestInit: { headers: { Authorization: `Bearer ${process.env.TOKEN_ALICE}` } },
});
const client = new Client({ name: "kubegate-ts-check", version: "1.0.0" });
await client.connect(transport);
const names = (await client.listTools()).tools.map((tool) => tool.name);
assert.ok(names.includes("list-resources"), names.join(","));
assert.ok(!names.includes("delete_namespace"), names.join(","));
const mine = await client.callTool({
  name: "list-resources",
  arguments: { resourceType: "pods", namespace: "team-a" },
});
assert.equal(mine.isError, false, mine.content[0].text);
assert.match(mine.content[0].text, /pods in namespace "team-a"/);
const theirs = await client.callTool({
  name: "list-resources",
  arguments: { resourceType: "pods", namespace: "team-b" },
});
assert.equal(theirs.isError, true);
assert.match(theirs.content[0].text, /no policy permits it/);
await client.close();
console.log(`typescript sdk (${transport.protocolVersion}): ${names.length} tools listed, calls decided as alice`);
