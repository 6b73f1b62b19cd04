-- wrk script: GET a random path from a file per request (usage: wrk -s wrk_paths.lua URL -- PATHFILE TOKEN)
local paths = {}
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  wrk.headers["x-purpose-of-use"] = "registration"
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
end
function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
function done(summary, latency, requests)
  io.write(string.format("requests %d errors non2xx=%d timeouts=%d\n", summary.requests, summary.errors.status, summary.errors.timeout))
  for _, p in ipairs({50, 90, 95, 99, 99.9}) do
    io.write(string.format("p%g %.2f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("max %.2f ms, rps %.0f\n", latency.max / 1000, summary.requests / (summary.duration / 1e6)))
end
