-- wrk script of bench/ingest.py: POST one log to /data/fast, count the answers.
-- SLUICE_BENCH_KEY, when set, is sent as `Authorization: Bearer <key>` (ingest scope).
-- done() prints one line `WRK_JSON {...}` that bench/ingest.py reads.
wrk.method = "POST"
wrk.path = "/data/fast"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"level": "INFO", "source": "web-01", "application": "api", '
  .. '"message": "GET /api/v1/orders/41872 200 in 23ms user=80312 request '
  .. 'f4b1c2de-6a1e-4c53-9a7e-2b0c5d9e8f10", "metadata": {"request_id": '
  .. '"f4b1c2de-6a1e-4c53-9a7e-2b0c5d9e8f10", "user_id": 80312, "region": "eu"}}'
local key = os.getenv("SLUICE_BENCH_KEY")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  accepted = 0
  refused = 0
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
  else
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  local ok, bad = 0, 0
  for _, thread in ipairs(threads) do
    ok = ok + thread:get("accepted")
    bad = bad + thread:get("refused")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "accepted": %d, "refused": %d, '
      .. '"p50_us": %d, "p99_us": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, ok, bad,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout))
end
