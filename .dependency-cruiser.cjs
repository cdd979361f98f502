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

module.exports = {
  forbidden: [
    {
      name: 'types-import-nothing',
      comment: 'src/types is shared by the extension host and the browser webviews: it imports only itself, never a layer, a package or a Node module.',
      severity: 'error',
      from: { path: '^src/types/' },
      to: { pathNot: '^src/types/' },
    },
    {
      name: 'rdma-imports-no-layer-above',
      comment: 'src/rdma is the bottom layer: it imports only src/types (never the kernel model, session, relay or views).',
      severity: 'error',
      from: { path: '^src/rdma/' },
      to: { path: outside('types|rdma') },
    },
    {
      name: 'kernel-model-imports-no-session',
      comment: 'The kernel model (src/kernel, src/vmcore, src/detect) is built on rdma and types only: no session, relay, settings or UI.',
      severity: 'error',
      from: { path: '^src/(kernel|vmcore|detect)/' },
      to: { path: outside('types|rdma|kernel|vmcore|detect') },
    },
    {
      name: 'session-imports-no-front-end',
      comment: 'The session layer (and the relay client it opens targets through) sits under the relay server, views, commands, CLI and debug adapter.',
      severity: 'error',
      from: { path: `^src/(session|settings)/|^src/relay/(remote|wire)\\.ts$` },
      to: { path: outside(SESSION_LAYER) },
    },
    {
      name: 'targets-open-through-session',
      comment: 'One way to open a target: src/session/open-target.ts (openTarget, openHeld, openLiveTransport). Above the session layer nothing opens a transport or connects itself.',
      severity: 'error',
      from: { path: '^src/(?!rdma/|session/)' },
      to: { path: '^src/rdma/(connect|shm)\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'views-import-no-commands',
      comment: 'Commands use views, never the other way: what both need goes into the session layer or below.',
      severity: 'error',
      from: { path: '^src/views/' },
      to: { path: '^src/(commands|cli|debug)/|^src/extension\\.ts$' },
    },
    {
      name: 'cli-imports-no-extension',
      comment: 'The CLI runs in plain Node: no vscode, views, commands, debug adapter or extension entry.',
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: '^src/(views|commands|debug|settings)/|^src/extension\\.ts$|^vscode$|node_modules/@types/vscode/' },
    },
    {
      name: 'cli-reaches-no-vscode',
      comment: 'Nothing the CLI loads, however indirectly, may load vscode (it exists only inside the extension host).',
      severity: 'error',
      from: { path: '^src/cli/main\\.ts$' },
      to: { path: '^vscode$|node_modules/@types/vscode/', reachable: true },
    },
    {
      name: 'front-ends-import-no-entry',
      comment: 'src/extension.ts wires the extension together; nothing imports it.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/extension\\.ts$' },
    },
    {
      name: 'webview-imports-only-types',
      comment: 'Webviews run in the browser: they import their own folder, src/types and browser packages, never host code or Node modules.',
      severity: 'error',
      from: { path: '^webview/' },
      to: { path: '^(src/(?!types/)|test/|testbed/|bench/|scripts/)' },
    },
    {
      name: 'webview-imports-no-node',
      comment: 'Webviews run in the browser: no Node built-in modules.',
      severity: 'error',
      from: { path: '^webview/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'host-imports-no-webview',
      comment: 'The extension host and the webviews meet only in src/types (a webview file is browser code).',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^webview/' },
    },
    {
      name: 'product-imports-no-testbed-or-tests',
      comment: 'Product code (what the .vsix and dist/cli.js bundle) never imports the QEMU testbed, tests, benchmarks or scripts; `grass testbed` loads testbed/ at run time from a checkout.',
      severity: 'error',
      from: { path: '^(src|webview)/' },
      to: { path: '^(testbed|test|bench|scripts)/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to nothing is a typo or a missing package.',
      severity: 'error',
      from: { path: '^(src|webview)/' },
      to: { couldNotResolve: true },
    },
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
