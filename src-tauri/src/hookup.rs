//! Which URL to paste where: for each platform, the webhook URLs of a source, one per hook or
//! trigger where the platform's bodies do not name their event.

use serde::Serialize;

use crate::facts::Platform;
use crate::store::sources::Source;

/// One URL to paste into a platform's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct HookUrl {
    /// The platform's name for the hook or event, as its settings show it.
    pub hook: &'static str,
    pub url: String,
}

/// (the platform's name for the hook, the trigger segment of the URL)
fn hooks(platform: Platform) -> &'static [(&'static str, Option<&'static str>)] {
    match platform {
        Platform::Bigmarker => &[
            ("New Webinar Registration", Some("registration")),
            ("Webinar Start", Some("webinar-start")),
            ("Webinar Opens from waiting room", Some("waiting-room-open")),
            ("Webinar Ends", Some("webinar-end")),
            ("Send live webinar attendee data", Some("attendee-data")),
            ("Attendee enters Webinar", Some("attendee-enters")),
            ("Attendee watched on demand", Some("on-demand-viewer")),
            ("New webinar Create (channel level)", Some("new-webinar")),
        ],
        Platform::Tagmango => &[
            ("webinar.created.single", Some("webinar.created.single")),
            (
                "webinar.created.recurring",
                Some("webinar.created.recurring"),
            ),
            ("webinar.completed.all", Some("webinar.completed.all")),
        ],
        Platform::Livestorm => &[
            ("REST API webhooks (every event)", None),
            ("Event created", Some("event-created")),
            ("Session created", Some("session-created")),
            ("Event is Published", Some("event-published")),
            ("New registrant", Some("new-registrant")),
            ("Event starts", Some("event-starts")),
            ("Event ends", Some("event-ends")),
        ],
        Platform::Gotowebinar => &[("All webhook events", None)],
    }
}

/// The URLs for `source`, under `base` (the public URL the platform reaches the receiver at).
pub fn hook_urls(base: &str, source: &Source) -> Vec<HookUrl> {
    let base = base.trim_end_matches('/');
    let root = format!("{base}/hooks/{}/{}", source.platform, source.token);
    hooks(source.platform)
        .iter()
        .map(|(hook, trigger)| HookUrl {
            hook,
            url: match trigger {
                Some(trigger) => format!("{root}/{trigger}"),
                None => root.clone(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platforms;

    #[test]
    fn every_trigger_url_names_a_trigger_its_parser_knows() {
        for platform in Platform::ALL {
            for (hook, trigger) in hooks(platform) {
                if let Some(trigger) = trigger {
                    assert!(
                        platforms::triggers(platform).contains(trigger),
                        "{platform} hook {hook:?} uses unknown trigger {trigger}"
                    );
                }
            }
        }
    }
}
