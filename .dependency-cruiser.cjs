// The import boundaries of the TypeScript code (docs/dependencies.md): layers import downwards
// only. From the bottom:
//   src/types     the vocabulary every side shares (imports nothing else)
//   src/rdma      transport -> protocol client
//   kernel model  src/kernel, src/vmcore, src/detect
//   session       src/session, src/settings, the relay's client side (src/relay/remote.ts, wire.ts)
//   top           src/relay/server.ts, src/views, src/commands, src/cli, src/debug; src/extension.ts wires
// webview/ runs in the browser and shares only src/types with the host.
// `npm run check:deps` runs it; npm test's check suite fails on any violation.

/** Everything in src/ above the layer whose folders `allowed` names (a path regex). */
const outside = (allowed) => `^src/(?!(${allowed})(/|$))`;

const SESSION_LAYER = 'types|rdma|kernel|vmcore|detect|session|settings|relay/remote\\.ts|relay/wire\\.ts';

/** A forbidden import: from the modules `from` matches to those `to` matches (dependency-cruiser's from/to). */
const forbid = (name, comment, from, to) => ({ name, comment, severity: 'error', from, to });

const VSCODE = '^vscode$|node_modules/@types/vscode/';

module.exports = {
  forbidden: [
    forbid('types-import-nothing', 'src/types is shared by the extension host and the browser webviews: it imports only itself, never a layer, a package or a Node module.', { path: '^src/types/' }, { pathNot: '^src/types/' }),
    forbid('rdma-imports-no-layer-above', 'src/rdma is the bottom layer: it imports only src/types (never the kernel model, session, relay or views).', { path: '^src/rdma/' }, { path: outside('types|rdma') }),
    forbid('kernel-model-imports-no-session', 'The kernel model (src/kernel, src/vmcore, src/detect) is built on rdma and types only: no session, relay, settings or UI.', { path: '^src/(kernel|vmcore|detect)/' }, { path: outside('types|rdma|kernel|vmcore|detect') }),
    forbid('session-imports-no-front-end', 'The session layer (and the relay client it opens targets through) sits under the relay server, views, commands, CLI and debug adapter.', { path: `^src/(session|settings)/|^src/relay/(remote|wire)\\.ts$` }, { path: outside(SESSION_LAYER) }),
    forbid('targets-open-through-session', 'One way to open a target: src/session/open-target.ts (openTarget, openHeld, openLiveTransport). Above the session layer nothing opens a transport or connects itself.', { path: '^src/(?!rdma/|session/)' }, { path: '^src/rdma/(connect|shm)\\.ts$', dependencyTypesNot: ['type-only'] }),
    forbid('views-import-no-commands', 'Commands use views, never the other way: what both need goes into the session layer or below.', { path: '^src/views/' }, { path: '^src/(commands|cli|debug)/|^src/extension\\.ts$' }),
    forbid('cli-imports-no-extension', 'The CLI runs in plain Node: no vscode, views, commands, debug adapter or extension entry.', { path: '^src/cli/' }, { path: `^src/(views|commands|debug|settings)/|^src/extension\\.ts$|${VSCODE}` }),
    forbid('cli-reaches-no-vscode', 'Nothing the CLI loads, however indirectly, may load vscode (it exists only inside the extension host).', { path: '^src/cli/main\\.ts$' }, { path: VSCODE, reachable: true }),
    forbid('front-ends-import-no-entry', 'src/extension.ts wires the extension together; nothing imports it.', { path: '^src/' }, { path: '^src/extension\\.ts$' }),
    forbid('webview-imports-only-types', 'Webviews run in the browser: they import their own folder, src/types and browser packages, never host code or Node modules.', { path: '^webview/' }, { path: '^(src/(?!types/)|test/|testbed/|bench/|scripts/)' }),
    forbid('webview-imports-no-node', 'Webviews run in the browser: no Node built-in modules.', { path: '^webview/' }, { dependencyTypes: ['core'] }),
    forbid('host-imports-no-webview', 'The extension host and the webviews meet only in src/types (a webview file is browser code).', { path: '^src/' }, { path: '^webview/' }),
    forbid('product-imports-no-testbed-or-tests', 'Product code (what the .vsix and dist/cli.js bundle) never imports the QEMU testbed, tests, benchmarks or scripts; `grass testbed` loads testbed/ at run time from a checkout.', { path: '^(src|webview)/' }, { path: '^(testbed|test|bench|scripts)/' }),
    forbid('not-to-unresolvable', 'An import that resolves to nothing is a typo or a missing package.', { path: '^(src|webview)/' }, { couldNotResolve: true }),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // `import type` counts too: a type-only import still ties one layer to another.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.d.ts', '.js', '.cjs', '.mjs', '.json'],
    },
  },
};
