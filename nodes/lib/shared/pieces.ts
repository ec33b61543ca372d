/**
 * Text written in pieces and turned into UTF-8 bytes piece by piece, so a
 * large request body (an ACMP message, a 4me upload) never exists as one
 * string.
 *
 * Why: a string above 128 KB is a V8 large object. A body is alive while its
 * request is in flight, so it survives a scavenge, lands in the old
 * generation and stays there until the next full collection; with default
 * heap sizing that garbage is what made the peak RSS of a large sync. Pieces
 * of PIECE_CHARS stay small young objects, and the bytes live outside the
 * heap as one Buffer.
 */

/** Characters per piece: small enough to stay an ordinary young object whatever the characters (2 bytes each at most). */
export const PIECE_CHARS = 16 * 1024;

/** Collects written strings and hands them on once they reach PIECE_CHARS (and at `end`). */
export class PieceWriter {
  private cur = '';
  constructor(private readonly flush: (piece: string) => void) {}

  write(s: string): void {
    this.cur += s;
    if (this.cur.length >= PIECE_CHARS) {
      this.flush(this.cur);
      this.cur = '';
    }
  }

  end(): void {
    if (this.cur) this.flush(this.cur);
    this.cur = '';
  }
}

/**
 * The UTF-8 bytes of what `fill` writes. Pieces end between two writes, so a
 * surrogate pair written in one `write` is never split.
 */
export function utf8Pieces(fill: (w: PieceWriter) => void): Buffer {
  const chunks: Buffer[] = [];
  let length = 0;
  const w = new PieceWriter((p) => {
    const b = Buffer.from(p, 'utf8');
    chunks.push(b);
    length += b.length;
  });
  fill(w);
  w.end();
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length);
}

/** The text of what `fill` writes (pieces joined once at the end). */
export function textPieces(fill: (w: PieceWriter) => void): string {
  const pieces: string[] = [];
  const w = new PieceWriter((p) => pieces.push(p));
  fill(w);
  w.end();
  return pieces.join('');
}
