-- wrk script of `pnpm bench`: POSTs telemetry as many devices, each request with its own device key
-- and timestamps no other request uses (a repeated (device, timestamp) would merge into one stored
-- point and make the stored count wrong). Configured by environment (read when the script loads):
--   BENCH_DEVICES_FILE       lines "<device id> <api key> <name>"; thread k sends as devices k, k+T, …
--   BENCH_THREADS            T, wrk's -t
--   BENCH_POINTS             points per request: 1 sends the one-point body, more {"points": [...]}
--   BENCH_FIRST_TIMESTAMP_MS every device's first timestamp; each request takes the next ones (1 ms apart)
--   BENCH_EXACT              "1" when each thread has one connection (-t = -c): latency is then timed
--                            per request and split by status, and Retry-After is honoured exactly
--   BENCH_BODIES_DIR         line protocol instead of JSON: the gzipped bodies 1.gz … <BENCH_BODIES>.gz
--   BENCH_BODIES             (bench/harness/line-protocol-bodies.ts), body n being every device's n-th
--                            request, sent as Telegraf does (Authorization: Token, Content-Encoding:
--                            gzip); BENCH_POINTS is then the lines of a body
-- A 503 is answered by waiting its Retry-After before the next request. With several connections per
-- thread wrk does not tell which connection a response came on, so the wait goes to the thread's
-- next request: as many waits as 503s, each as long as asked.
-- done() prints one line "BENCH_RESULT {json}" that bench/harness/wrk.ts parses.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")
local REALTIME, MONOTONIC = 0, 1
local function clock_ms(clock)
  ffi.C.clock_gettime(clock, timespec)
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

local devices_file = assert(os.getenv("BENCH_DEVICES_FILE"), "BENCH_DEVICES_FILE is not set")
local thread_count = tonumber(os.getenv("BENCH_THREADS") or "1")
local points_per_request = tonumber(os.getenv("BENCH_POINTS") or "1")
local first_timestamp = tonumber((assert(os.getenv("BENCH_FIRST_TIMESTAMP_MS"), "BENCH_FIRST_TIMESTAMP_MS is not set")))
local exact = os.getenv("BENCH_EXACT") == "1"
local bodies_dir = os.getenv("BENCH_BODIES_DIR")
local body_count = tonumber(os.getenv("BENCH_BODIES") or "0")

-- ---------------------------------------------------------------- main state: one per run

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

-- ---------------------------------------------------------------- thread state: one per thread

local devices = {}
local cursor = 1
local headers = { ["Content-Type"] = "application/json" }
local data_variants = {}
local bodies = {}
local sent_at = 0
local delays_owed = {}

-- Read by done() through thread:get, so global in the thread's state; flat tables only (wrk copies
-- nested tables between states wrongly).
statuses = {}
latencies_accepted, latencies_refused, latencies_other = {}, {}, {}
first_refusal_ms = nil
-- Requests a device could not send: its prepared bodies were all sent (the thread then stops).
bodies_exhausted = 0

function init(args)
  local index = 0
  for line in io.lines(devices_file) do
    local id, key = line:match("^(%d+)%s+(%S+)")
    if id then
      if index % thread_count == thread_index then
        table.insert(devices, { key = key, next_timestamp = first_timestamp, next_body = 1 })
      end
      index = index + 1
    end
  end
  assert(#devices > 0, "more wrk threads than devices")
  if bodies_dir then
    -- Read once: the load loop does no file I/O.
    for i = 1, body_count do
      local file = assert(io.open(bodies_dir .. "/" .. i .. ".gz", "rb"))
      bodies[i] = file:read("*a")
      file:close()
    end
    headers = { ["Content-Type"] = "text/plain; charset=utf-8", ["Content-Encoding"] = "gzip" }
    return
  end
  -- A few realistic field sets, chosen by timestamp: building numbers per point would cost more CPU
  -- than the gateway spends on them.
  math.randomseed(thread_index + 1)
  for i = 1, 64 do
    data_variants[i] = string.format(
      '{"temperature":%.2f,"humidity":%.1f,"battery":%d,"rssi":%d}',
      18 + math.random() * 8, 35 + math.random() * 30, 20 + math.random(0, 80), -95 + math.random(0, 50))
  end
end

local function point(timestamp)
  -- Epoch ms have 13 digits: Lua prints them whole (up to 14 significant digits).
  return '{"timestamp":' .. timestamp .. ',"data":' .. data_variants[timestamp % 64 + 1] .. '}'
end

local function line_protocol_request(device)
  local body = bodies[device.next_body]
  if not body then
    bodies_exhausted = bodies_exhausted + 1
    wrk.thread:stop()
    body = ""
  end
  device.next_body = device.next_body + 1
  headers["Authorization"] = "Token " .. device.key
  if exact then sent_at = clock_ms(MONOTONIC) end
  return wrk.format("POST", nil, headers, body)
end

function request()
  local device = devices[cursor]
  cursor = cursor % #devices + 1
  if bodies_dir then return line_protocol_request(device) end
  local timestamp = device.next_timestamp
  device.next_timestamp = timestamp + points_per_request
  local body
  if points_per_request == 1 then
    body = point(timestamp)
  else
    local points = {}
    for i = 1, points_per_request do points[i] = point(timestamp + i - 1) end
    body = '{"points":[' .. table.concat(points, ",") .. "]}"
  end
  headers["X-API-Key"] = device.key
  if exact then sent_at = clock_ms(MONOTONIC) end
  return wrk.format("POST", nil, headers, body)
end

function response(status, response_headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if exact then
    local acknowledged = status == 202 or status == 204
    local latencies = acknowledged and latencies_accepted or (status == 503 and latencies_refused or latencies_other)
    table.insert(latencies, clock_ms(MONOTONIC) - sent_at)
  end
  if status == 503 then
    first_refusal_ms = first_refusal_ms or clock_ms(REALTIME)
    local retry_after = tonumber(response_headers["Retry-After"] or response_headers["retry-after"]) or 1
    table.insert(delays_owed, retry_after * 1000)
  end
end

function delay()
  if #delays_owed == 0 then return 0 end
  return table.remove(delays_owed, 1)
end

-- ---------------------------------------------------------------- the report

local function percentiles(values)
  table.sort(values)
  local function at(p)
    if #values == 0 then return nil end
    return values[math.min(#values, math.floor(p / 100 * #values) + 1)]
  end
  return { count = #values, p50 = at(50), p99 = at(99), max = values[#values] }
end

local function to_json(value)
  local kind = type(value)
  if kind == "table" then
    local parts = {}
    for k, v in pairs(value) do table.insert(parts, string.format("%q:%s", tostring(k), to_json(v))) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif kind == "number" then
    return string.format("%.3f", value)
  elseif kind == "nil" then
    return "null"
  end
  return string.format("%q", tostring(value))
end

function done(summary, latency, requests)
  local merged_statuses, merged = {}, { accepted = {}, refused = {}, other = {} }
  local first_refusal = nil
  local exhausted = 0
  for _, thread in ipairs(threads) do
    exhausted = exhausted + thread:get("bodies_exhausted")
    for status, count in pairs(thread:get("statuses")) do
      merged_statuses[status] = (merged_statuses[status] or 0) + count
    end
    for kind, values in pairs(merged) do
      for _, v in ipairs(thread:get("latencies_" .. kind)) do table.insert(values, v) end
    end
    local refusal = thread:get("first_refusal_ms")
    if refusal and (not first_refusal or refusal < first_refusal) then first_refusal = refusal end
  end
  local stat = io.open("/proc/self/stat"):read("*a")
  local fields = {}
  for field in stat:sub(stat:find(")", 1, true) + 2):gmatch("%S+") do table.insert(fields, field) end
  local report = {
    duration_ms = summary.duration / 1000,
    requests = summary.requests,
    errors = summary.errors,
    statuses = merged_statuses,
    -- wrk's own histogram (every status, µs → ms); with BENCH_EXACT also per status, timed here.
    latency_ms = { p50 = latency:percentile(50) / 1000, p99 = latency:percentile(99) / 1000, max = latency.max / 1000 },
    exact = exact,
    by_status_ms = exact and {
      accepted = percentiles(merged.accepted),
      refused = percentiles(merged.refused),
      other = percentiles(merged.other),
    } or nil,
    first_refusal_epoch_ms = first_refusal,
    bodies_exhausted = exhausted,
    cpu_seconds = (tonumber(fields[12]) + tonumber(fields[13])) / 100,
  }
  io.write("BENCH_RESULT ", to_json(report), "\n")
end
