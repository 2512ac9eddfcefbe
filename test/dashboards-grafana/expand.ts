/**
 * What happens to a panel's SQL between Grafana and ClickHouse, done here the same way so the test runs
 * what Grafana would run:
 * 1. Grafana interpolates dashboard variables in the browser: `$name` / `${name}` become the value,
 *    `${name:singlequote}` the values of a multi-value variable quoted and joined with commas ("All"
 *    selects every option of the variable).
 * 2. The ClickHouse data source plugin (grafana-clickhouse-datasource v4, pkg/macros) expands its macros:
 *    $__timeFilter(c)    c >= toDateTime(<from s>) AND c <= toDateTime(<to s>)
 *    $__timeFilter_ms(c) c >= fromUnixTimestamp64Milli(<from ms>) AND c <= fromUnixTimestamp64Milli(<to ms>)
 *    $__dateFilter(c)    c >= toDate('<from day>') AND c <= toDate('<to day>')
 *    $__fromTime, $__toTime          toDateTime(<s>);   $__fromTime_ms, $__toTime_ms  fromUnixTimestamp64Milli(<ms>)
 *    $__timeInterval(c)  toStartOfInterval(toDateTime(c), INTERVAL <interval s, at least 1> second)
 *    $__timeInterval_ms(c) toStartOfInterval(toDateTime64(c, 3), INTERVAL <interval ms> millisecond)
 *    $__interval_s       <interval s>
 * Anything else starting with `$` is an error: Grafana would send it to ClickHouse as it is.
 */
export interface GrafanaContext {
  from: number;
  to: number;
  intervalMs: number;
  /** Dashboard variables: a text value, or the values of a multi-value one. */
  vars: Record<string, string | string[]>;
}

const quote = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function variables(sql: string, ctx: GrafanaContext): string {
  return sql.replace(/\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)/g, (whole, braced: string, format: string | undefined, bare: string) => {
    const name = braced ?? bare;
    const value = ctx.vars[name];
    if (value === undefined) throw new Error(`unknown dashboard variable ${whole}`);
    const values = Array.isArray(value) ? value : [value];
    if (format === 'singlequote') return values.map(quote).join(',');
    if (format !== undefined) throw new Error(`variable format ${format} is not used by these dashboards`);
    return values.join(',');
  });
}

const seconds = (ms: number) => Math.floor(ms / 1000);
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

function macros(sql: string, ctx: GrafanaContext): string {
  const intervalS = Math.max(Math.floor(ctx.intervalMs / 1000), 1);
  return sql.replace(/\$__(\w+)(?:\(([^()]*)\))?/g, (whole, name: string, arg: string | undefined) => {
    if (arg !== undefined && !['timeFilter', 'timeFilter_ms', 'dateFilter', 'timeInterval', 'timeInterval_ms'].includes(name)) throw new Error(`${whole}: takes no argument`);
    const col = () => {
      if (!arg || arg.includes(',')) throw new Error(`${whole}: expected one argument`);
      return arg.trim();
    };
    switch (name) {
      case 'timeFilter':
        return `${col()} >= toDateTime(${seconds(ctx.from)}) AND ${col()} <= toDateTime(${seconds(ctx.to)})`;
      case 'timeFilter_ms':
        return `${col()} >= fromUnixTimestamp64Milli(${ctx.from}) AND ${col()} <= fromUnixTimestamp64Milli(${ctx.to})`;
      case 'dateFilter':
        return `${col()} >= toDate('${day(ctx.from)}') AND ${col()} <= toDate('${day(ctx.to)}')`;
      case 'fromTime':
        return `toDateTime(${seconds(ctx.from)})`;
      case 'toTime':
        return `toDateTime(${seconds(ctx.to)})`;
      case 'fromTime_ms':
        return `fromUnixTimestamp64Milli(${ctx.from})`;
      case 'toTime_ms':
        return `fromUnixTimestamp64Milli(${ctx.to})`;
      case 'timeInterval':
        return `toStartOfInterval(toDateTime(${col()}), INTERVAL ${intervalS} second)`;
      case 'timeInterval_ms':
        return `toStartOfInterval(toDateTime64(${col()}, 3), INTERVAL ${Math.max(ctx.intervalMs, 1)} millisecond)`;
      case 'interval_s':
        return String(intervalS);
      default:
        throw new Error(`unknown macro ${whole}`);
    }
  });
}

/** The SQL ClickHouse receives for a panel's raw SQL. */
export function expand(sql: string, ctx: GrafanaContext): string {
  const out = macros(variables(sql, ctx), ctx);
  if (out.includes('$')) throw new Error(`left unexpanded: ${out.slice(out.indexOf('$'), out.indexOf('$') + 40)}`);
  return out;
}
