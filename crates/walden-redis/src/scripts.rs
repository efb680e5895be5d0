//! The Lua scripts. Each runs atomically inside Redis, is loaded once per server (EVALSHA,
//! reloaded on NOSCRIPT by redis-rs's `Script::invoke`) and touches only keys of one hash slot.
//!
//! Times are Redis's own `TIME` (no client clock skew), kept as decimal nanoseconds since the
//! Unix epoch in strings. Lua numbers are doubles, exact only below 2^53, so a time is handled
//! as whole seconds plus nanoseconds (each exact) and every product (cost × interval) is
//! computed in Rust and passed in the same split form. Versions are compared as strings.

use std::sync::LazyLock;

use redis::Script;

/// Helpers shared by the scripts that handle times.
const TIME_PRELUDE: &str = r#"
local function fmt(s, n) return string.format('%.0f%09.0f', s, n) end
local function parse(str) return tonumber(string.sub(str, 1, -10)) or 0, tonumber(string.sub(str, -9)) end
local function norm(s, n)
  if n >= 1e9 then return s + 1, n - 1e9 end
  if n < 0 then return s - 1, n + 1e9 end
  return s, n
end
local function before(as, an, bs, bn) return as < bs or (as == bs and an < bn) end
local t = redis.call('TIME')
local now_s, now_n = tonumber(t[1]), tonumber(t[2]) * 1000
"#;

/// Documents: a batch with preconditions, all-or-nothing.
///
/// KEYS, per operation i: document hash, collection index (sorted set), collection version
/// floor. ARGV[1] = operation count; per operation: kind (`P`ut, `D`elete, `C`heck), condition
/// (`*` any, `A` absent, `N` absent with a found document reported as a conflict, or a
/// version), key, JSON (empty unless a put).
///
/// Every precondition is checked before anything is written (a script is atomic but does not
/// roll back), in batch order, each operation seeing the effects of the ones before it. A put
/// of a document that exists leaves the index alone (its key is there already): one call less
/// on the hottest path, an `update`.
/// Returns `{1, now, result...}` (a result: version, or empty for none), `{2, i, current, …}`
/// on a conflict, `{3, i, current, …}` when an insert finds a document; a refusal also carries
/// the stored document of operation i (version, time, JSON; empty if absent), so an `update`
/// loop retries without another read.
const COMMIT: &str = r#"
local n = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = string.format('%.0f%06.0f000', tonumber(t[1]), tonumber(t[2]))
local work, floors, dirty_floors, results, plan = {}, {}, {}, {}, {}
local function floor_of(fk)
  local f = floors[fk]
  if f == nil then
    f = tonumber(redis.call('GET', fk) or '0')
    floors[fk] = f
  end
  return f
end
local function refuse(code, i, cur)
  local h = redis.call('HMGET', KEYS[3 * i - 2], 'v', 't', 'j')
  return {code, i, cur or '', h[1] or '', h[2] or '', h[3] or ''}
end
for i = 1, n do
  local b = 1 + 4 * (i - 1)
  local kind, cond, member, json = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local dk, ik, fk = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local cur = work[dk]
  if cur == nil then
    cur = redis.call('HGET', dk, 'v') or false
    work[dk] = cur
  end
  if cond == 'A' and cur and kind == 'P' then return refuse(3, i, cur) end
  if (cond == 'A' or cond == 'N') and cur then return refuse(2, i, cur) end
  if cond ~= '*' and cond ~= 'A' and cond ~= 'N' and cond ~= cur then return refuse(2, i, cur) end
  if kind == 'P' then
    local v
    if cur then v = string.format('%.0f', tonumber(cur) + 1)
    else v = string.format('%.0f', floor_of(fk) + 1) end
    results[i] = v
    work[dk] = v
    plan[#plan + 1] = {'P', dk, ik, member, v, json, cur}
  elseif kind == 'D' then
    if cur then
      results[i] = cur
      local c = tonumber(cur)
      if c > floor_of(fk) then floors[fk] = c; dirty_floors[fk] = true end
      work[dk] = false
      plan[#plan + 1] = {'D', dk, ik, member}
    else
      results[i] = ''
    end
  else
    results[i] = cur or ''
  end
end
for _, p in ipairs(plan) do
  if p[1] == 'P' then
    redis.call('HSET', p[2], 'v', p[5], 't', now, 'j', p[6])
    if not p[7] then redis.call('ZADD', p[3], 0, p[4]) end
  else
    redis.call('DEL', p[2])
    redis.call('ZREM', p[3], p[4])
  end
end
for fk, _ in pairs(dirty_floors) do
  redis.call('SET', fk, string.format('%.0f', floors[fk]))
end
local out = {1, now}
for i = 1, n do out[#out + 1] = results[i] end
return out
"#;

/// Documents: one page of a scan, read at one instant. KEYS[1] = index; ARGV = lex min, lex
/// max, most members, document key prefix. Returns key, version, time, JSON per document.
const SCAN: &str = r#"
local members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, m in ipairs(members) do
  local h = redis.call('HMGET', ARGV[4] .. m, 'v', 't', 'j')
  out[#out + 1] = m
  out[#out + 1] = h[1] or ''
  out[#out + 1] = h[2] or ''
  out[#out + 1] = h[3] or ''
end
return out
"#;

/// Rate limiter: one GCRA check. KEYS[1] = the key's TAT. ARGV = cost (n·T) seconds and
/// nanoseconds, window (B·T) seconds and nanoseconds, `1` to consume (`0`: peek). An allowed
/// consuming check stores the new TAT with an expiry at that time (idle keys vanish). Returns
/// `{allowed, TIME seconds, TIME microseconds, stored TAT or nil}`: the client turns them into
/// the decision's fields with the embedded limiter's arithmetic.
///
/// It is the hottest script, so it does only what must happen inside Redis (profiled with
/// `INFO commandstats`: the script machinery and its three calls are most of its cost): no
/// helper closures, no formatting of the reply (`TIME`'s own strings and the stored string go
/// back as they are), one `string.format` for the value it writes.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now_s, now_n = tonumber(t[1]), tonumber(t[2]) * 1000
local tat_s, tat_n = now_s, now_n
local stored = redis.call('GET', KEYS[1])
if stored then
  local s, n = tonumber(string.sub(stored, 1, -10)), tonumber(string.sub(stored, -9))
  if s > now_s or (s == now_s and n > now_n) then tat_s, tat_n = s, n end
end
local new_s, new_n = tat_s + tonumber(ARGV[1]), tat_n + tonumber(ARGV[2])
if new_n >= 1e9 then new_s, new_n = new_s + 1, new_n - 1e9 end
local lim_s, lim_n = now_s + tonumber(ARGV[3]), now_n + tonumber(ARGV[4])
if lim_n >= 1e9 then lim_s, lim_n = lim_s + 1, lim_n - 1e9 end
if new_s > lim_s or (new_s == lim_s and new_n > lim_n) then return {0, t[1], t[2], stored} end
if ARGV[5] == '1' then
  local ms = math.ceil((new_s - now_s) * 1000 + (new_n - now_n) / 1e6)
  if ms < 1 then ms = 1 end
  redis.call('SET', KEYS[1], string.format('%d%09d', new_s, new_n), 'PX', ms)
end
return {1, t[1], t[2], stored}
"#;

/// Circuit breaker: the state machine of the embedded breaker, on one hash shared by every
/// instance. KEYS[1] = the breaker. ARGV: operation (`acquire`, `outcome`, `set`, `health`),
/// configuration fingerprint, consecutive-failure limit (0: off), rate threshold percent (0:
/// off), window calls, minimum calls, open duration seconds and nanoseconds, half-open probes,
/// then per operation: `outcome` generation and failed (0/1); `set` target state code.
///
/// States: 0 Closed, 1 Open, 2 HalfOpen, 3 ForcedOpen, 4 Disabled. A half-open breaker whose
/// probes were all issued longer than the open duration ago had a probe die unreported: it
/// reopens (as the embedded store does for a breaker recovered in HalfOpen). Writes only when
/// something changed, so a Closed breaker's successes cost no write.
const BREAKER: &str = r#"
local k, op, cfg = KEYS[1], ARGV[1], ARGV[2]
local consec, thr, win, minc = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local open_s, open_n, probes = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local h = {}
local raw = redis.call('HGETALL', k)
for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
local st, g = tonumber(h.st or '0'), h.g or '0'
local ou, lt = h.ou or '0', h.lt or '0'
local cf, pi, ps = tonumber(h.cf or '0'), tonumber(h.pi or '0'), tonumber(h.ps or '0')
local w, wf = h.w or '', tonumber(h.wf or '0')
local dirty = false
if op ~= 'health' and h.cfg ~= cfg then
  cf, pi, ps, w, wf, dirty = 0, 0, 0, '', 0, true
end
local function transition(to)
  g = string.format('%.0f', tonumber(g) + 1)
  st = to
  cf, pi, ps, w, wf = 0, 0, 0, '', 0
  lt = fmt(now_s, now_n)
  if to == 1 then ou = fmt(norm(now_s + open_s, now_n + open_n)) else ou = '0' end
  dirty = true
end
local function remaining_open()
  local s, n = parse(ou)
  if before(now_s, now_n, s, n) then return fmt(norm(s - now_s, n - now_n)) end
  return nil
end
local reply
if op == 'acquire' then
  while reply == nil do
    if st == 0 or st == 4 then
      reply = {1, g, st}
    elseif st == 3 then
      reply = {0, '', st}
    elseif st == 1 then
      local r = remaining_open()
      if r then reply = {0, r, st} else transition(2) end
    elseif pi < probes then
      pi = pi + 1
      dirty = true
      reply = {1, g, st}
    else
      local ls, ln = parse(lt)
      local ds, dn = norm(ls + open_s, ln + open_n)
      if before(now_s, now_n, ds, dn) then reply = {0, '', st} else transition(1) end
    end
  end
elseif op == 'outcome' then
  local failed = ARGV[11] == '1'
  if ARGV[10] ~= g or (st ~= 0 and st ~= 2) then
    reply = {0, g, st}
  elseif st == 0 then
    if failed then cf = cf + 1 else cf = 0 end
    local rate_tripped = false
    if thr > 0 then
      if #w >= win then
        if string.sub(w, 1, 1) == '1' then wf = wf - 1 end
        w = string.sub(w, 2)
      end
      if failed then w = w .. '1'; wf = wf + 1 else w = w .. '0' end
      rate_tripped = #w >= minc and wf * 100 >= thr * #w
    end
    dirty = dirty or failed or thr > 0 or h.cf ~= tostring(cf)
    if failed and ((consec > 0 and cf >= consec) or rate_tripped) then transition(1) end
    reply = {1, g, st}
  elseif failed then
    transition(1)
    reply = {1, g, st}
  else
    ps = ps + 1
    dirty = true
    if ps >= probes then transition(0) end
    reply = {1, g, st}
  end
elseif op == 'set' then
  transition(tonumber(ARGV[10]))
  reply = {1, g, st}
else
  return {st, g, ou, lt, cf, #w, wf}
end
if dirty then
  redis.call('HSET', k, 'st', st, 'g', g, 'ou', ou, 'lt', lt, 'cf', cf, 'pi', pi, 'ps', ps,
    'w', w, 'wf', wf, 'cfg', cfg)
end
return reply
"#;

pub(crate) static COMMIT_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(COMMIT));
pub(crate) static SCAN_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SCAN));
pub(crate) static GCRA_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(GCRA));
pub(crate) static BREAKER_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(&format!("{TIME_PRELUDE}{BREAKER}")));
