// wan-serve as a child process for the node-driven tests: started on a free port, which it prints
// as its first stdout line; `port` rejects when it exits first or stays silent for 20 s.
const { spawn } = require('child_process');

function startServe(binary, args) {
  const child = spawn(binary, ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const port = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`wan-serve exited with ${code}: ${log.slice(-400)}`)));
    setTimeout(() => reject(new Error('wan-serve did not print its port within 20 s')), 20000);
  });
  return { child, port, log: () => log };
}

module.exports = { startServe };
