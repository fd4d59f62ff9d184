/** What went wrong, as text: an Error's message, or any other thrown value as a string. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
