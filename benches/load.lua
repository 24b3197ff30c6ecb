-- wrk script: POST a distinct Mailjet `sent` event per request, so every request is a
-- new event (no dedupe shortcut), one in ten matching a rule.
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

-- EVENT=open posts opens instead of sends; ID_OFFSET starts the message ids further on
-- (benches/million.sh sends in rounds, each with new ids).
local kind = os.getenv("EVENT") or "sent"
local offset = tonumber(os.getenv("ID_OFFSET") or "0")

function init(args)
  counter = offset
end

function request()
  counter = counter + 1
  local id = tid * 10000000000 + counter
  -- The current time, as a provider sends it (timers and windows run on event time).
  local body = string.format(
    '{"event":"%s","time":%d,"MessageID":%d,"email":"user%d@example.com","mj_campaign_id":%d,"mj_contact_id":4,"customcampaign":"","CustomID":"helloworld","Payload":""}',
    kind, os.time(), id, id, counter % 100)
  return wrk.format("POST", "/hooks/mailjet", {["Content-Type"] = "application/json"}, body)
end
