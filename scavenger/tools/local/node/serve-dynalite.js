// Serve dynalite (in memory) on loopback, print the bound port, and exit as soon as
// stdin closes: the Python parent holds the other end, so this process never
// outlives it, even when the parent is killed.
"use strict";
const dynalite = require("dynalite");

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
