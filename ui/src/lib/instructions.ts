// Per-platform setup steps, taken from each platform's own documentation (shared/platform-docs):
// the exact menu paths, and for platforms with an API what Rollcall does for you when you give it
// a key and press "Subscribe automatically".
export const INSTRUCTIONS: Record<string, string[]> = {
  bigmarker: [
    'Log into your webinar in BigMarker and select the Integrations tab.',
    'Scroll down and select Webhooks.',
    'Toggle on each outgoing webhook you want and paste the URL listed below for it: New Webinar Registration, Webinar Start, Webinar Opens from waiting room, Webinar Ends, Send live webinar attendee data, Attendee enters Webinar, Attendee watched on demand.',
    'For the channel-level "New webinar Create" hook, paste the new-webinar URL in your channel\'s integrations.',
    'BigMarker has no API for this: repeat it for every webinar. It sends start, end and waiting-room times without a time zone, so give this source the zone your BigMarker account uses; those times are marked as assumed.',
  ],
  tagmango: [
    'Copy your API key from TagMango and enter it below (it is kept in the system keychain, or a file only you can read).',
    'Press "Subscribe automatically": Rollcall calls POST https://api-prod-new.tagmango.com/api/v1/integration/webhook/webhook with header x-api-key once per event, each with the URL listed below for that event as hookUrl (TagMango\'s bodies do not say which event they are).',
    'Events subscribed: webinar.created.single, webinar.created.recurring and webinar.completed.all, for all your webinars (no "webinar" filter).',
    'By hand instead: curl -X POST https://api-prod-new.tagmango.com/api/v1/integration/webhook/webhook -H \'accept: application/json\' -H \'x-api-key: KEY\' -H \'Content-Type: application/json\' -d \'{"hookUrl": "URL FOR THE EVENT", "event": "EVENT"}\'',
  ],
  livestorm: [
    'Native integration (by hand): in Livestorm go to Settings → Account settings.',
    'Click Apps and select the Webhooks card, then Setup integration → Add a webhook.',
    'Choose the trigger, paste the URL listed below for that trigger, and click Add a webhook. Repeat for each of the 6 triggers (Event created, Session created, Event is Published, New registrant, Event starts, Event ends): one URL per trigger. The integration applies to all your events.',
    'Or automatically: create an API token in Livestorm (Account settings → Integrations → Public API), enter it below and press "Subscribe automatically". Rollcall creates one REST webhook per event with POST /v1/webhooks, all on the plain URL since their bodies name their event, and deletes them (DELETE /v1/webhooks/{id}) when you unsubscribe or remove the source.',
  ],
  gotowebinar: [
    'Create a developer app (OAuth client) at developer.goto.com for your GoTo Webinar account, and get an access token for your organizer account with it.',
    'Enter the access token below and press "Subscribe automatically". Rollcall then does the webhook steps of GoTo\'s guide for you:',
    'It creates a secret key (POST /webhooks/secretkey) and keeps it with this source, so every delivery\'s signature is checked.',
    'It creates one webhook per event (registrant.added, registrant.joined, webinar.created, webinar.changed) with the plain URL below as callback (POST /webhooks).',
    'It activates them (PUT /webhooks with state ACTIVE). GoTo checks the URL with a GET first; Rollcall answers it.',
    'It subscribes your user to each webhook (POST /userSubscriptions). Access tokens expire after an hour: enter a fresh one before re-pointing.',
  ],
};
