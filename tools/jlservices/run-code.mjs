// Run `print(6 * 7)` on a new kernel of a Jupyter server with @jupyterlab/services in Node,
// the way a Node program uses JupyterLab's client library, and print the kernel's output.
//
//   node run-code.mjs <base-url> <token> header|url
//
// header: the websocket handshake carries `Authorization: token ...` (a ws subclass adds it;
//         appendToken = false keeps the token out of the URL);
// url:    the library's Node default, `?token=` in the websocket URL (appendToken = true).
// Exit 0 with the output on stdout; 1 with the error (the server's 403 body included) on stderr.
import { KernelManager, ServerConnection } from '@jupyterlab/services';
import WebSocket from 'ws';

// The library logs to the console ("Starting WebSocket: ..."): keep stdout for the output.
for (const name of ['debug', 'log', 'info', 'warn']) {
  console[name] = (...args) => process.stderr.write(args.join(' ') + '\n');
}

const [baseUrl, token, mode] = process.argv.slice(2);
const headerMode = mode === 'header';

class HeaderWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { headers: { Authorization: `token ${token}` } });
  }
}

const serverSettings = ServerConnection.makeSettings({
  baseUrl,
  wsUrl: baseUrl.replace(/^http/, 'ws'),
  token,
  appendToken: !headerMode,
  WebSocket: headerMode ? HeaderWebSocket : WebSocket,
});

// A handshake refusal: ws reports "Unexpected server response: 403"; fetch the body the
// same way so the caller sees what the server said.
async function refusalBody(kernelId) {
  const url = `${serverSettings.wsUrl}api/kernels/${kernelId}/channels?token=${encodeURIComponent(token)}`;
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    ws.on('error', () => {});
    ws.on('open', () => { ws.close(); resolve('opened'); });
  });
}

const manager = new KernelManager({ serverSettings });
let kernel;
try {
  await manager.ready;
  kernel = await manager.startNew({ name: 'python3' });
  const status = await Promise.race([
    new Promise((resolve) => {
      if (kernel.connectionStatus === 'connected') resolve('connected');
      kernel.connectionStatusChanged.connect((_, s) => {
        if (s === 'connected' || s === 'disconnected') resolve(s);
      });
    }),
    new Promise((resolve) => setTimeout(() => resolve('timeout'), 15000)),
  ]);
  if (status !== 'connected') {
    const body = headerMode ? '' : await refusalBody(kernel.id);
    throw new Error(`kernel websocket ${status}: ${body}`);
  }
  let out = '';
  const future = kernel.requestExecute({ code: 'print(6 * 7)' });
  future.onIOPub = (msg) => {
    if (msg.header.msg_type === 'stream') out += msg.content.text;
  };
  await future.done;
  process.stdout.write(out);
  await kernel.shutdown();
  manager.dispose();
  process.exit(0);
} catch (err) {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  if (kernel) { try { await kernel.shutdown(); } catch { /* the server may refuse */ } }
  process.exit(1);
}
