// Temporary shapes until the ts-rs bindings land in ./bindings (then this re-exports them).
export type Platform = 'bigmarker' | 'tagmango' | 'livestorm' | 'gotowebinar';
export type WebinarStatus = 'scheduled' | 'live' | 'ended' | 'deleted';
export type DeliveryStatus = 'projected' | 'duplicate' | 'quarantined' | 'ignored';
export interface ApiErrorBody { kind: string; message: string }
export interface PlatformMeta { slug: string; name: string }
export interface Meta { version: string; time_zone: string; hook_base_url: string; platforms: PlatformMeta[] }
export interface SessionInfo { id: string; scheduled_start: string | null; started_at: string | null; ended_at: string | null; status: WebinarStatus }
export interface WebinarInfo {
  uid: string; platform: string; platform_name: string; external_id: string; title: string | null;
  description: string | null; url: string | null; registration_url: string | null; kind: string | null;
  recurrence: string | null; owner_name: string | null; owner_email: string | null;
  scheduled_start: string | null; scheduled_end: string | null; created_at: string | null;
  published_at: string | null; changed_at: string | null; deleted_at: string | null;
  waiting_room_opened_at: string | null; started_at: string | null; ended_at: string | null;
  times_assumed_zone: string | null; status: WebinarStatus; extra: Record<string, string>;
  sessions: SessionInfo[];
}
export interface WebinarLine extends WebinarInfo {
  registered: number; attended: number; attendance_rate: number | null; replay_viewers: number; date: string | null;
}
export interface WebinarList { time_zone: string; webinars: WebinarLine[] }
export interface TimeStats { total_secs: number; average_secs: number; median_secs: number; known: number; known_share: number }
export interface Numbers {
  registered: number; attended: number; attended_registrants: number; walk_ins: number; no_shows: number;
  attendance_rate: number | null; time_in_session: TimeStats | null; engaged: TimeStats | null;
  platform_attendance_rate: number | null; peak_concurrent: number | null; replay_viewers: number | null; replay_secs: number | null;
}
export interface WebinarReport {
  time_zone: string; webinar: WebinarInfo; session: SessionInfo | null; numbers: Numbers;
  sources: Record<string, Record<string, number>>; hosts: string[]; guest_speakers: string[];
}
export interface TimelineEntry { at: string; kind: string; session: string | null; person_uid: string | null; person: string | null; basis: string | null; delivery_id: number }
export interface Point { at: string; value: number }
export interface Timeline { time_zone: string; entries: TimelineEntry[]; registrations: Point[]; presence: Point[]; presence_known: number; attendance_records: number }
export interface Participant {
  person_uid: string; email: string | null; first_name: string | null; last_name: string | null; name: string | null;
  phone: string | null; organization: string | null; job_title: string | null; city: string | null; country: string | null;
  role: string; registered: boolean; registration_status: string | null; registered_at: string | null; registered_at_is_receipt: boolean;
  source: string | null; referrer: string | null; tracking_code: string | null; utm_source: string | null; utm_medium: string | null;
  utm_campaign: string | null; utm_term: string | null; utm_content: string | null; join_url: string | null;
  custom_fields: Record<string, string>; attended: boolean; first_joined_at: string | null; last_left_at: string | null;
  join_count: number; time_in_session_secs: number | null; engaged_secs: number | null; platform_attendance_rate: number | null;
  replay_views: number; replay_secs: number | null;
}
export interface PeopleInWebinar { time_zone: string; people: Participant[] }
export interface PersonLine { uid: string; email: string | null; name: string | null; organization: string | null; webinars_registered: number; webinars_attended: number; no_shows: number; replay_views: number; platforms: string[] }
export interface Participation { webinar_uid: string; platform: string; title: string | null; date: string | null; role: string; registered: boolean; registered_at: string | null; attended: boolean; first_joined_at: string | null; time_in_session_secs: number | null; replay_views: number }
export interface PersonReport {
  time_zone: string; uid: string; email: string | null; first_name: string | null; last_name: string | null; name: string | null;
  phone: string | null; organization: string | null; job_title: string | null; city: string | null; country: string | null;
  platforms: string[]; webinars: Participation[]; webinars_registered: number; webinars_attended: number; no_shows: number;
  replay_views: number; time_in_session_secs: number | null; time_known_for: number;
}
export interface DeliverySummary {
  id: number; platform: string; source_id: number | null; trigger: string | null; received_at: string; via: string;
  content_type: string | null; body_bytes: number; identity: string; status: DeliveryStatus; detail: string | null; duplicate_of: number | null;
}
export interface DeliveryList { deliveries: DeliverySummary[]; counts: Record<string, number> }
export interface DeliveryDetail extends DeliverySummary { headers: Record<string, string>; time_zone: string | null; body: string; body_is_utf8: boolean }
export interface Receipt { delivery: number; status: DeliveryStatus }
export interface ReindexReport { projected: number; quarantined: number; ignored: number }
export interface HookUrl { hook: string; url: string }
export interface SourceView { id: number; platform: string; platform_name: string; label: string; token: string; time_zone: string; created_at: string; secret_keys: number; hook_urls: HookUrl[] }
export interface NewSource { platform: string; label: string; time_zone: string | null; secret_keys: string[] }
export interface Changes { deliveries: number; last_delivery: number; statuses: Record<string, number>; webinars: string[] }
