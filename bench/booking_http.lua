-- wrk script for bench/booking_bench.py: every request books a different slot.
-- Arguments (after wrk's --): organisation, appointment type, location, patient, first day
-- (days after base), wrk thread count, providers (comma-separated), base (UTC midnight,
-- epoch seconds), a tag that keeps idempotency keys unique across levels.
-- Request n of thread t is the booking number k = t + n * threads, which names one
-- (day, half-hour from 06:00, provider): no two requests of a run ask for the same slot.

local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  org, type_id, location, patient = args[1], args[2], args[3], args[4]
  first_day, threads = tonumber(args[5]), tonumber(args[6])
  providers = {}
  for provider in string.gmatch(args[7], "[^,]+") do
    table.insert(providers, provider)
  end
  base, tag = tonumber(args[8]), args[9]
  k = id
end

function request()
  local n = k
  k = k + threads
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
  local headers = {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("wrk-%s-%d", tag, n),
  }
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"failed":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.status + errors.connect + errors.read + errors.write + errors.timeout))
end
