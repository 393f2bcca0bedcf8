// An MCP client outside the Python SDK -- the official TypeScript SDK, used as its README shows -- against
// `semcode mcp`. Run by tests/test_mcp_js_client.py; by hand (after `npm ci` here):
//
//   node check.mjs --query NAME --expect PATH:LINE --stdio semcode mcp ROOT --index-dir D --model M
//   node check.mjs --query NAME --expect PATH:LINE [--token T] --http http://127.0.0.1:8765/mcp
//
// It lists the tools, waits for index_status to say "ready", searches (lexical) for NAME and expects the first hit
// at PATH starting on 1-based line LINE, reads that hit with read_code (by its lines, then by its id), asks for
// limit=500 (a one-line error), and prints one JSON line. Any failure: a
// message on stderr and exit status 1 (2 for bad arguments).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const TOOLS = ['index_status', 'read_code', 'reindex', 'related_code', 'search_code'];
const USAGE =
  'usage: node check.mjs --query NAME --expect PATH:LINE [--timeout SECONDS] [--token T] ' +
  '(--stdio COMMAND ARGS... | --http URL)';

function parseArgs(argv) {
  const opts = { timeout: 120 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--stdio') {
      opts.stdio = argv.slice(i + 1); // everything after --stdio is the server's command line
      break;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${arg} needs a value`);
    if (arg === '--http') opts.http = value;
    else if (arg === '--query') opts.query = value;
    else if (arg === '--expect') opts.expect = value;
    else if (arg === '--timeout') opts.timeout = Number(value);
    else if (arg === '--token') opts.token = value;
    else throw new Error(`unknown argument ${arg}`);
  }
  if (!opts.stdio === !opts.http) throw new Error('give exactly one of --stdio COMMAND... or --http URL');
  if (opts.stdio && opts.stdio.length === 0) throw new Error('--stdio needs a command');
  const m = /^(.+):(\d+)$/.exec(opts.expect ?? '');
  if (!opts.query || !m) throw new Error('--query NAME and --expect PATH:LINE are required');
  opts.expectPath = m[1];
  opts.expectLine = Number(m[2]);
  if (!(opts.timeout > 0)) throw new Error('--timeout must be a positive number of seconds');
  return opts;
}

function check(ok, message) {
  if (!ok) throw new Error(message);
}

// callTool, failing on a tool error (isError) with the server's message; returns the structured content.
async function call(client, name, args = {}) {
  const result = await client.callTool({ name, arguments: args });
  const text = (result.content ?? []).map((c) => c.text ?? '').join('\n');
  check(!result.isError, `${name} answered an error: ${text}`);
  check(result.structuredContent, `${name}: no structuredContent in the result`);
  return result.structuredContent;
}

async function run(opts) {
  const started = Date.now();
  const deadline = started + opts.timeout * 1000;
  const transport = opts.stdio
    ? new StdioClientTransport({ command: opts.stdio[0], args: opts.stdio.slice(1), stderr: 'inherit' })
    : new StreamableHTTPClientTransport(new URL(opts.http), {
        requestInit: opts.token ? { headers: { Authorization: `Bearer ${opts.token}` } } : undefined,
      });
  const client = new Client({ name: 'semcode-js-check', version: '1.0.0' });
  try {
    await client.connect(transport);
    const server = client.getServerVersion();
    check(server?.name === 'semcode', `server name: expected "semcode", got ${JSON.stringify(server)}`);

    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    check(JSON.stringify(names) === JSON.stringify(TOOLS), `tools: expected ${TOOLS}, got ${names}`);

    let status = await call(client, 'index_status');
    while (status.index.state !== 'ready') {
      const errors = status.repositories.map((r) => `${r.root}: ${r.last_error}`).join('; ');
      check(status.index.state !== 'error', `index_status says "error": ${errors}`);
      check(Date.now() < deadline, `index not ready after ${opts.timeout} s: ${JSON.stringify(status.index)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
      status = await call(client, 'index_status');
    }

    // lexical: exact words, so the first hit is certain whatever the model (the test's tiny model is random)
    const search = await call(client, 'search_code', { query: opts.query, mode: 'lexical', limit: 5 });
    check(search.hits.length > 0, `search_code ${JSON.stringify(opts.query)}: no hits`);
    const hit = search.hits[0];
    const where = `${hit.path}:${hit.start_line}-${hit.end_line}`;
    check(
      hit.path === opts.expectPath && hit.start_line === opts.expectLine,
      `search_code ${JSON.stringify(opts.query)}: first hit ${where} (${hit.symbol}), ` +
        `expected ${opts.expectPath}:${opts.expectLine}`,
    );

    const read = await call(client, 'read_code', {
      path: hit.path,
      start_line: hit.start_line,
      end_line: hit.end_line,
    });
    check(
      read.start_line === hit.start_line && read.end_line === hit.end_line,
      `read_code ${where}: got lines ${read.start_line}-${read.end_line}`,
    );
    check(read.text.includes(opts.query), `read_code ${where}: the text does not contain ${opts.query}`);

    // the hit's stable id: read_code expands it to its whole definition (a small function: its own lines)
    const byId = await call(client, 'read_code', { id: hit.id });
    check(byId.text.includes(opts.query), `read_code id=${hit.id}: the text does not contain ${opts.query}`);

    // an argument out of range is a tool error of one line an agent can act on, not a validation report
    const bad = await client.callTool({ name: 'search_code', arguments: { query: opts.query, limit: 500 } });
    const badText = (bad.content ?? []).map((c) => c.text ?? '').join('\n');
    check(bad.isError && !badText.includes('\n'), `search_code limit=500: expected a one-line error, got ${badText}`);

    // HTTP: end the session as a well-behaved client does (DELETE /mcp)
    if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession();

    return {
      ok: true,
      transport: opts.stdio ? 'stdio' : 'http',
      server: `${server.name} ${server.version}`,
      tools: names,
      files: status.index.files,
      chunks: status.index.chunks,
      hit: where,
      symbol: hit.symbol,
      read_lines: read.end_line - read.start_line + 1,
      id: hit.id,
      id_read: `${byId.path}:${byId.start_line}-${byId.end_line}`,
      bad_limit: badText,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await client.close(); // stdio: closes the server's stdin, then ends the process
  }
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`check.mjs: ${e.message}\n${USAGE}`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await run(opts)));
} catch (e) {
  console.error(`check.mjs (${opts.stdio ? 'stdio' : opts.http}): FAILED: ${e.message}`);
  process.exit(1);
}
