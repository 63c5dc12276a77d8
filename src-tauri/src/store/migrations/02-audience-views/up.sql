-- Who counts as audience: hosts and guest speakers (by any registration or attendance record
-- of theirs for the webinar) are kept apart, and cancelled or denied registrations do not count.

CREATE VIEW audience_registrants AS
SELECT DISTINCT r.webinar_uid, r.person_uid
FROM registrations r
WHERE coalesce(r.status, '') NOT IN ('cancelled', 'denied')
  AND NOT EXISTS (SELECT 1 FROM registrations s WHERE s.person_uid = r.person_uid
                  AND s.webinar_uid = r.webinar_uid AND s.role <> 'audience')
  AND NOT EXISTS (SELECT 1 FROM attendance s WHERE s.person_uid = r.person_uid
                  AND s.webinar_uid = r.webinar_uid AND s.role <> 'audience');

CREATE VIEW audience_attendees AS
SELECT DISTINCT a.webinar_uid, a.person_uid
FROM attendance a
WHERE a.attended
  AND NOT EXISTS (SELECT 1 FROM registrations s WHERE s.person_uid = a.person_uid
                  AND s.webinar_uid = a.webinar_uid AND s.role <> 'audience')
  AND NOT EXISTS (SELECT 1 FROM attendance s WHERE s.person_uid = a.person_uid
                  AND s.webinar_uid = a.webinar_uid AND s.role <> 'audience');
