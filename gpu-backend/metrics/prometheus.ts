// Parser of the Prometheus text exposition format (0.0.4), for tests and anything that scrapes a driver; the metrics
// themselves are prom-client's (driverMetrics.ts).

export type Labels = Record<string, string>;

export interface Sample {
  name: string;
  labels?: Labels;
  value: number;
}

export interface ParsedMetric {
  type?: string;
  help?: string;
  samples: Sample[];
}

/** Strict parser of the text format (the subset prom-client writes: no timestamps, no exemplars). */
export function parsePrometheusText(text: string): Map<string, ParsedMetric> {
  const out = new Map<string, ParsedMetric>();
  const fam = (n: string) => {
    let f = out.get(n);
    if (!f) out.set(n, (f = { samples: [] }));
    return f;
  };
  const sampleRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
  text.split('\n').forEach((line, i) => {
    if (line === '') return;
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
      const rest = line.slice(7);
      const sp = rest.indexOf(' ');
      const name = rest.slice(0, sp);
      if (line[2] === 'H') fam(name).help = rest.slice(sp + 1);
      else fam(name).type = rest.slice(sp + 1);
      return;
    }
    if (line.startsWith('#')) return;
    const m = sampleRe.exec(line);
    if (!m) throw new Error(`metrics line ${i + 1} is not a sample: ${JSON.stringify(line)}`);
    const labels: Labels = {};
    if (m[3]) {
      labelRe.lastIndex = 0;
      while (labelRe.lastIndex < m[3].length) {
        const l = labelRe.exec(m[3]);
        if (!l) throw new Error(`metrics line ${i + 1}: bad labels ${JSON.stringify(m[3])}`);
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      }
    }
    // NaN and ±Inf in any case, as Prometheus reads them (prom-client writes "Nan" for a gauge with no data yet)
    const word = m[4].toLowerCase();
    const v = word === 'nan' ? NaN : word === '+inf' || word === 'inf' ? Infinity : word === '-inf' ? -Infinity : Number(m[4]);
    if (Number.isNaN(v) && word !== 'nan') throw new Error(`metrics line ${i + 1}: bad value ${m[4]}`);
    const base = m[1].replace(/_(bucket|sum|count)$/, '');
    const owner = out.has(m[1]) ? m[1] : out.get(base)?.type === 'histogram' ? base : m[1];
    fam(owner).samples.push({ name: m[1], labels, value: v });
  });
  return out;
}
