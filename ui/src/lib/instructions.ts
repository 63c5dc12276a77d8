// Per-platform setup steps (from the README, "Receive webhooks").
export const INSTRUCTIONS: Record<string, string[]> = {
  bigmarker: [
    'In BigMarker, open each webinar → Integrations → Webhooks.',
    'Enable each outgoing webhook and paste the URL listed for it below (registration, webinar start, waiting room, webinar end, live attendee data, attendee enters, on-demand viewer).',
    'For the channel-level "New webinar Create" hook, use the new-webinar URL.',
    'BigMarker sends start, end and waiting-room times without a time zone: give this source the zone your BigMarker account uses. Those times are marked as assumed.',
  ],
  tagmango: [
    'TagMango webhooks are subscribed through its API with your API key, one URL per event (the body does not say which event it is).',
    'For each of webinar.created.single, webinar.created.recurring and webinar.completed.all, run: curl -X POST https://api-prod-new.tagmango.com/api/v1/integration/webhook/webhook -H \'x-api-key: KEY\' -H \'Content-Type: application/json\' -d \'{"hookUrl": "URL FOR THE EVENT", "event": "EVENT"}\'',
    'Use the URL listed below for that event as hookUrl.',
  ],
  livestorm: [
    'In Livestorm, open Account settings → Apps → Webhooks → Add a webhook.',
    'Add one webhook per trigger, each with the URL listed below for that trigger.',
    'Webhooks created through the REST API (POST /v1/webhooks) all use the plain URL, since their bodies name their event.',
  ],
  gotowebinar: [
    'In your GoTo developer app, create a secret key and give it to this source (below, or "Add key") so Rollcall checks every delivery\'s signature.',
    'Create a webhook per event (registrant.added, registrant.joined, webinar.created, webinar.changed) with the URL listed below as callback.',
    'Activate the webhooks and subscribe your user. GoTo checks the URL with a GET first; Rollcall answers it.',
  ],
};

export const TUNNEL_NOTE =
  'The platforms need a public HTTPS address: run a tunnel to the webhook port (for example `cloudflared tunnel --url http://127.0.0.1:8787`) and start Rollcall with `--public-url` set to it, so these URLs use the tunnel.';
