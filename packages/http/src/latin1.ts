/**
 * Node's Buffer has latin1Slice/latin1Write on its prototype (what toString('latin1') and
 * write(s, o, 'latin1') call after checking their arguments); @types/node does not declare them. The
 * hot path calls them directly: offsets here come from the scanner and are always in range.
 */
declare global {
  interface Buffer {
    latin1Slice(start: number, end: number): string;
    latin1Write(s: string, offset: number, length?: number): number;
  }
}
export {};
