// Query results (process list, stack traces, blocked tasks, modules, Describe Target, detection,
// metrics) as read-only documents, one per query run: `grass-query:/<target> <query> #n`, served
// by a TextDocumentContentProvider as VS Code's own virtual documents are, in plain text (no log
// highlighting colouring the digits of `kworker/0:1`). The pids and symbols a query printed are
// DocumentLinks: a pid reveals its row in Processes, a symbol opens the memory inspector there.
import * as vscode from 'vscode';

export const QUERY_SCHEME = 'grass-query';

/** What a link of a query's text leads to. */
export type QueryLink = { pid: number } | { symbol: string };

interface PlacedLink {
  line: number;
  start: number;
  end: number;
  link: QueryLink;
}

/** A query's text being written, with its links where they were printed. */
export class QueryText {
  readonly lines: string[] = [];
  readonly links: PlacedLink[] = [];

  /** Appends one line made of plain strings and linked [text, link] parts. */
  line(...parts: (string | [string, QueryLink])[]): this {
    let text = '';
    for (const part of parts) {
      if (typeof part === 'string') {
        text += part;
        continue;
      }
      this.links.push({ line: this.lines.length, start: text.length, end: text.length + part[0].length, link: part[1] });
      text += part[0];
    }
    this.lines.push(text);
    return this;
  }
}

/** The command a link runs (a command URI: DocumentLinks open it on Ctrl+click or Open Link). */
function linkTarget(link: QueryLink): { uri: vscode.Uri; tooltip: string } {
  const [command, args, tooltip] =
    'pid' in link ? ['grass.faults.revealCulprit', [link.pid], `Show pid ${link.pid} in Processes`] : ['grass.readMemory', [link.symbol], `Open ${link.symbol} in the memory inspector`];
  return { uri: vscode.Uri.parse(`command:${command}?${encodeURIComponent(JSON.stringify(args))}`), tooltip };
}

export class QueryDocuments implements vscode.TextDocumentContentProvider, vscode.DocumentLinkProvider, vscode.Disposable {
  private readonly documents = new Map<string, QueryText>();
  private count = 0;
  private readonly registrations: vscode.Disposable[];

  constructor() {
    this.registrations = [
      vscode.workspace.registerTextDocumentContentProvider(QUERY_SCHEME, this),
      vscode.languages.registerDocumentLinkProvider({ scheme: QUERY_SCHEME }, this),
      // A closed query's text is not kept.
      vscode.workspace.onDidCloseTextDocument((doc) => {
        if (doc.uri.scheme === QUERY_SCHEME) this.documents.delete(doc.uri.toString());
      }),
    ];
  }

  /** Opens a new read-only document for one query's result; resolves to it. */
  async show(target: string, query: string, text: QueryText): Promise<vscode.TextDocument> {
    const uri = vscode.Uri.from({ scheme: QUERY_SCHEME, path: `/${target} ${query} #${++this.count}` });
    this.documents.set(uri.toString(), text);
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc, { preview: false });
    return doc;
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.documents.get(uri.toString())?.lines.join('\n') ?? `This query's result is no longer kept: run the query again.`;
  }

  provideDocumentLinks(doc: vscode.TextDocument): vscode.DocumentLink[] {
    return (this.documents.get(doc.uri.toString())?.links ?? []).map((l) => {
      const { uri, tooltip } = linkTarget(l.link);
      const link = new vscode.DocumentLink(new vscode.Range(l.line, l.start, l.line, l.end), uri);
      link.tooltip = tooltip;
      return link;
    });
  }

  dispose(): void {
    for (const r of this.registrations) r.dispose();
    this.documents.clear();
  }
}
