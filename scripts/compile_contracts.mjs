#!/usr/bin/env node
// Compile the test contracts under tests/contracts/ (recursively, artifacts/ excluded) with the
// pinned solcjs from node_modules and write one JSON artifact per contract to
// tests/contracts/artifacts/<ContractName>.json. The artifacts are committed, so the test suite
// needs anvil but no compiler.
//
//   node scripts/compile_contracts.mjs           compile, (re)write artifacts, drop stale ones
//   node scripts/compile_contracts.mjs --check   exit 1 if any artifact is missing or stale
//                                                (source hashes only; no compiler is loaded)
//
// Each .sol file is its own compilation unit (imports are resolved relative to it; an import of
// `@aave/core-v3/...`, as in the vendored gho-core sources, from the pinned npm package under
// node_modules, whose file hashes the artifact records like any other dependency). A unit is
// compiled with the legacy pipeline first and, only if that fails with "stack too deep", again
// with viaIR; the settings used are recorded in the artifact. Output is deterministic: sorted
// keys, two-space indent, trailing newline, no metadata hash in the bytecode.

import { createHash } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CONTRACTS = path.join(ROOT, "tests", "contracts");
const ARTIFACTS = path.join(CONTRACTS, "artifacts");
const NPM_PACKAGES = ["@aave/core-v3/"]; // importable by name, from node_modules
const NODE_MODULES = path.join(ROOT, "node_modules");
// the file an import (a source unit name) names: a pinned npm package's, else the repository's
const sourceFile = (unit) =>
  NPM_PACKAGES.some((p) => unit.startsWith(p)) ? path.join(NODE_MODULES, unit) : path.resolve(ROOT, unit);
const COMPILER = "solc-0.8.37";
const BASE_SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 200 },
  metadata: { bytecodeHash: "none" },
};

function die(msg) {
  process.stderr.write(`compile_contracts: ${msg}\n`);
  process.exit(2);
}

const toPosix = (p) => p.split(path.sep).join("/");
const repoRel = (abs) => toPosix(path.relative(ROOT, abs));
const sha256 = (text) => createHash("sha256").update(text).digest("hex");

function listSources(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const abs = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (abs !== ARTIFACTS) out.push(...listSources(abs));
    } else if (entry.isFile() && entry.name.endsWith(".sol")) {
      out.push(abs);
    }
  }
  return out.sort();
}

function stable(value) {
  if (Array.isArray(value)) return value.map(stable);
  if (value && typeof value === "object") {
    const out = {};
    for (const k of Object.keys(value).sort()) out[k] = stable(value[k]);
    return out;
  }
  return value;
}

const dump = (obj) => JSON.stringify(stable(obj), null, 2) + "\n";

function readArtifacts() {
  if (!fs.existsSync(ARTIFACTS)) return new Map();
  const out = new Map();
  for (const name of fs.readdirSync(ARTIFACTS).sort()) {
    if (!name.endsWith(".json")) continue;
    const file = path.join(ARTIFACTS, name);
    let doc;
    try {
      doc = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch (e) {
      out.set(name, { file, error: `unreadable JSON: ${e.message}` });
      continue;
    }
    out.set(name, { file, doc });
  }
  return out;
}

function sourceHash(relPath) {
  const abs = sourceFile(relPath);
  return fs.existsSync(abs) ? sha256(fs.readFileSync(abs)) : null;
}

function check() {
  const problems = [];
  const covered = new Set();
  for (const [name, { doc, error }] of readArtifacts()) {
    if (error) {
      problems.push(`${name}: ${error}`);
      continue;
    }
    if (!doc || typeof doc.sourcePath !== "string" || doc.compiler === undefined) continue; // not ours
    covered.add(doc.sourcePath);
    const current = sourceHash(doc.sourcePath);
    if (current === null) problems.push(`${name}: source ${doc.sourcePath} no longer exists`);
    else if (current !== doc.sourceSha256) problems.push(`${name}: ${doc.sourcePath} changed since compile`);
    for (const [dep, digest] of Object.entries(doc.dependencies ?? {})) {
      const d = sourceHash(dep);
      if (d !== digest) problems.push(`${name}: imported ${dep} changed since compile`);
    }
    if (doc.compiler !== COMPILER) problems.push(`${name}: compiled by ${doc.compiler}, want ${COMPILER}`);
    const want = { ...BASE_SETTINGS, viaIR: doc.settings?.viaIR === true };
    if (dump(doc.settings ?? {}) !== dump(want)) problems.push(`${name}: compiler settings differ`);
    if (doc.contractName + ".json" !== name) problems.push(`${name}: contractName ${doc.contractName}`);
  }
  for (const abs of listSources(CONTRACTS)) {
    const rel = repoRel(abs);
    if (!covered.has(rel)) problems.push(`${rel}: no artifact (never compiled)`);
  }
  if (problems.length) {
    process.stderr.write(
      "stale contract artifacts (run `node scripts/compile_contracts.mjs`):\n" +
        problems.map((p) => `  ${p}\n`).join(""),
    );
    process.exit(1);
  }
  process.stdout.write(`artifacts up to date (${covered.size} sources)\n`);
}

function compileUnit(solc, abs, viaIR) {
  const rel = repoRel(abs);
  const input = {
    language: "Solidity",
    sources: { [rel]: { content: fs.readFileSync(abs, "utf8") } },
    settings: {
      ...BASE_SETTINGS,
      viaIR,
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"] } },
    },
  };
  const findImports = (p) => {
    const target = sourceFile(p);
    const npm = NPM_PACKAGES.some((pkg) => target.startsWith(path.join(NODE_MODULES, pkg)));
    if (!npm && !target.startsWith(CONTRACTS + path.sep)) return { error: `import outside tests/contracts: ${p}` };
    if (!fs.existsSync(target)) return { error: `file not found: ${p}` };
    return { contents: fs.readFileSync(target, "utf8") };
  };
  return JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
}

function compile() {
  const require = createRequire(import.meta.url);
  const solc = require(path.join(ROOT, "node_modules", "solc"));
  const version = solc.version();
  if (!version.startsWith(COMPILER.slice(5) + "+")) die(`node_modules has solc ${version}, want ${COMPILER}`);

  const written = new Map(); // contract name -> source
  const sources = listSources(CONTRACTS);
  if (!sources.length) die(`no .sol files under ${repoRel(CONTRACTS)}`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const abs of sources) {
    const rel = repoRel(abs);
    let viaIR = false;
    let out = compileUnit(solc, abs, viaIR);
    const isErr = (e) => e.severity === "error";
    if ((out.errors ?? []).some((e) => isErr(e) && /stack too deep/i.test(e.message))) {
      viaIR = true;
      out = compileUnit(solc, abs, viaIR);
    }
    const errors = (out.errors ?? []).filter(isErr);
    if (errors.length) die(`${rel} failed to compile:\n${errors.map((e) => e.formattedMessage).join("\n")}`);
    for (const w of (out.errors ?? []).filter((e) => !isErr(e))) {
      process.stderr.write(`warning: ${w.formattedMessage}\n`);
    }
    const contracts = out.contracts?.[rel] ?? {};
    for (const name of Object.keys(contracts).sort()) {
      if (written.has(name)) die(`contract name ${name} defined in both ${written.get(name)} and ${rel}`);
      written.set(name, rel);
      const c = contracts[name];
      const meta = JSON.parse(c.metadata);
      const dependencies = {};
      for (const dep of Object.keys(meta.sources).sort()) {
        if (dep !== rel) dependencies[dep] = sourceHash(dep);
      }
      const artifact = {
        contractName: name,
        sourcePath: rel,
        sourceSha256: sourceHash(rel),
        dependencies,
        abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
        compiler: COMPILER,
        settings: { ...BASE_SETTINGS, viaIR },
      };
      const file = path.join(ARTIFACTS, `${name}.json`);
      const text = dump(artifact);
      if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) fs.writeFileSync(file, text);
    }
    process.stdout.write(`${rel}: ${Object.keys(contracts).sort().join(", ")}${viaIR ? " (viaIR)" : ""}\n`);
  }
  // drop artifacts of contracts that no longer exist
  for (const [name, { file, doc }] of readArtifacts()) {
    if (doc && typeof doc.sourcePath === "string" && !written.has(name.slice(0, -5))) {
      fs.unlinkSync(file);
      process.stdout.write(`removed stale ${repoRel(file)}\n`);
    }
  }
  process.stdout.write(`${written.size} artifacts in ${repoRel(ARTIFACTS)}\n`);
}

const args = process.argv.slice(2);
if (args.some((a) => a !== "--check")) die(`unknown arguments: ${args.join(" ")}`);
if (args.includes("--check")) check();
else compile();
