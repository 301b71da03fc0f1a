/** One line per event on stderr: `time level event key=value …`, or a JSON object per line. */
let format: 'text' | 'json' = 'text';
let sink: (line: string) => void = (line) => process.stderr.write(line + '\n');

export function setLogFormat(f: 'text' | 'json'): void {
  format = f;
}

/** Tests and embedders may send lines elsewhere. */
export function setLogSink(fn: (line: string) => void): void {
  sink = fn;
}

function text(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}

export function log(level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}): void {
  const time = new Date().toISOString();
  let line: string;
  if (format === 'json') line = JSON.stringify({ time, level, event, pid: process.pid, ...fields });
  else {
    line = `${time} ${level} ${event}`;
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${text(v)}`;
  }
  try {
    sink(line);
  } catch {
    // stderr gone: nothing else to do
  }
}
