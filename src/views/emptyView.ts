// A view whose content needs a connected target and a part not built yet (the Processes and
// Faults views until the kernel model and the detections land). It shows no items, so
// VS Code shows the view's welcome text from package.json (`viewsWelcome`), which says
// plainly that there is no connection. Replace it with the view's own provider file.
import type * as vscode from 'vscode';

export class EmptyView implements vscode.TreeDataProvider<never> {
  getChildren(): never[] {
    return [];
  }

  getTreeItem(item: never): vscode.TreeItem {
    return item;
  }
}
