-- wrk script for bench/gateway_bench.py: counts the answers by status and keeps the first body
-- of each status that is not a 2xx; in "book" mode every request books a different time with
-- an Idempotency-Key of its own. Headers given with wrk's -H (the bearer token, or the actor
-- headers) go on every request.
-- Arguments (after wrk's --): mode ("get" or "book"), the mean pause in milliseconds each
-- connection waits before each request (0: none, it sends as soon as it is answered); for
-- "book" also appointment type,
-- location, patient, first day (days after base), wrk thread count, providers
-- (comma-separated), base (UTC midnight, epoch seconds), a tag that keeps keys unique.
-- Request n of thread t is the booking number k = t + n * threads, which names one
-- (day, half-hour from 06:00, provider): no two requests of a run ask for the same time.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  mode, pause = args[1], tonumber(args[2])
  if pause > 0 then
    -- wrk looks for delay() after init; the clock of a request starts when it is sent.
    -- Pauses vary from half to one and a half times the mean, so that clients which all
    -- started at once do not stay in step and arrive in bursts.
    math.randomseed(os.time() + id)
    delay = function() return math.floor(pause * (0.5 + math.random())) end
  end
  if mode == "book" then
    type_id, location, patient = args[3], args[4], args[5]
    first_day, nthreads = tonumber(args[6]), tonumber(args[7])
    providers = {}
    for provider in string.gmatch(args[8], "[^,]+") do
      table.insert(providers, provider)
    end
    base, tag = tonumber(args[9]), args[10]
    k = id
    headers = {}
    for name, value in pairs(wrk.headers) do
      headers[name] = value
    end
    headers["Content-Type"] = "application/json"
  else
    static = wrk.format()
  end
end

function request()
  if mode ~= "book" then
    return static
  end
  local n = k
  k = k + nthreads
  local count = #providers
  local provider = providers[(n % count) + 1]
  local slot = math.floor(n / count) % 32
  local day = first_day + math.floor(n / (count * 32))
  local minutes = 6 * 60 + 30 * slot
  local local_start = string.format(
    "%sT%02d:%02d:00", os.date("!%Y-%m-%d", base + day * 86400),
    math.floor(minutes / 60), minutes % 60)
  local body = string.format(
    '{"appointment_type_id":"%s","location_id":"%s","patient_id":"%s",' ..
    '"local_start":"%s","preferred_resources":{"physician":"%s"}}',
    type_id, location, patient, local_start, provider)
  headers["Idempotency-Key"] = string.format("wrk-%s-%d", tag, n)
  return wrk.format("POST", nil, headers, body)
end

-- Counts live in plain globals (s201, s409, ...): numbers and strings cross from a thread to
-- done() safely with thread:get.
function response(status, _, body)
  local name = "s" .. status
  _G[name] = (_G[name] or 0) + 1
  if status >= 300 and _G["b" .. status] == nil then
    _G["b" .. status] = string.gsub(string.sub(body or "", 1, 400), "[\r\n]", " ")
  end
end

function done(summary, latency, requests)
  local counts, samples = {}, {}
  for _, thread in ipairs(threads) do
    for status = 100, 599 do
      local n = thread:get("s" .. status)
      if n then
        counts[status] = (counts[status] or 0) + n
        samples[status] = samples[status] or thread:get("b" .. status)
      end
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local errors = summary.errors
  io.write(string.format(
    'WRK {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"socket_errors":%d,' ..
    '"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.timeout, table.concat(parts, ",")))
  for status, text in pairs(samples) do
    io.write(string.format("WRKSAMPLE %d %s\n", status, text))
  end
end
