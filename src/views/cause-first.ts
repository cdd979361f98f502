// Errors read cause first: a message built as "context: context: cause" is cut at the edge of a
// toast or a row, so the innermost cause goes in front and the context follows.

/** "cannot read X: READ refused by the agent: bad authenticator" → "bad authenticator — cannot read X — READ refused by the agent". */
export function causeFirst(message: string): string {
  // ": " separates the layers' prefixes; addresses (rdma://[fe80::1]:7000, shm:/dev/...) have no ": ".
  const parts = message.split(': ').filter((p) => p.trim() !== '');
  if (parts.length < 2) return message;
  return [parts[parts.length - 1], ...parts.slice(0, -1)].join(' — ');
}
