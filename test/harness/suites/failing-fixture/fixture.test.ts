// One test that passes and one that fails on purpose (see index.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import * as vscode from 'vscode';

describe('harness fixture', () => {
  it('passes inside the extension host', () => {
    assert.equal(typeof vscode.version, 'string');
  });

  it('fails on purpose', () => {
    assert.equal(vscode.env.appName, 'deliberately wrong: this fixture must fail');
  });
});
