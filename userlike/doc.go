// Package userlike speaks the Userlike-compatible chatbot webhook protocol, so
// that chatbots which are not Facebook apps (Rasa, a Flask app, an LLM
// service) can run behind handoverd's own Facebook app.
//
// The wire format is pure: no I/O, no store. API is the one HTTP adapter,
// the bots' events endpoint (POST /api/chatbot/v1/events, SECURITY-TOKEN),
// thin over a Runtime that stores the events (package relaybot's Service;
// this package does not import it). The runtime (storage, the delivery
// queue, Messenger sends) calls the wire format:
//
//   - handoverd → bot: Build encodes a webhook call, an Info (cid,
//     approach_mode, contact, context, conversation, widget) and a Packet
//     (start, message, click, media, location, forward_failed) made with the
//     packet constructors.
//   - bot → handoverd: ParseEvents decodes a webhook response body or a body
//     posted to the API URL (one event object or a JSON list of them) into
//     typed Events, validating the whole body first; any problem is an
//     *apperr.Error of code Invalid naming the field, e.g.
//     "events[2].packet.payload.body".
//   - MergeContext applies a bot's context object to the stored one.
//   - ToMessenger turns an Event into Send API message objects, following the
//     seed's rules for choice messages on Facebook (button template, quick
//     replies, numbered text fallback); PendingChoice.Answer and
//     ParsePostback turn the customer's answer back into a click packet.
//   - Bot is a relay bot's configuration; Bot.Active decides by its behaviour
//     mode whether it takes a new conversation.
//
// # Reading the seed
//
// The seed (Userlike's Chatbot API page) names the event names, the info keys
// and a few payload fields, but its collapsed "Example" and "Payload
// parameters" sections are empty. Where it is silent this package chose the
// names below, reusing the seed's own vocabulary (body, link, fallback,
// on_failure, contact_identity_id, ...) so that one name means one thing
// everywhere. Unknown keys in payloads are ignored (Userlike promises only
// additive changes); a missing required key or a value of the wrong type is
// an error naming the key.
//
//	message              body (seed), text_format (seed: "markdown_v1")
//	bubbles              body, fallback (seed), options[{label, value}]
//	carousel             body, fallback, options[{label, value, image_url}]
//	button_template      header{type: text|image|video|document, text, link}
//	                     or a header string, body, footer, fallback,
//	                     options[{label, value}] (at most 3, seed)
//	list_template        header, body, footer, button, title, fallback,
//	                     options[{label, value, description}] (at most 10, seed)
//	buttons              body, buttons[{label, link}] ("body and link", seed)
//	button (deprecated)  body, label, link
//	media                link (seed), mime_type, filename
//	navigate             url
//	contact_update       name, email, mobile_number, external_customer_id,
//	                     custom_fields (all seed)
//	conversation_update  subject, topics, locale, custom_fields (all seed)
//	note_create          body, contact_identity_id (seed)
//	delay                duration (seconds, at most 60), typing_indicator
//	                     (default true; the seed says a typing indicator is
//	                     shown "by default")
//	forward_group        group_id, on_failure (seed: "feedback")
//	forward_skills       skills, on_failure
//	forward_any          on_failure
//	addon_dispatch       type
//	email_dispatch       recipient_type (operator | contact), operator_id
//
// Packets handoverd sends reuse the same shapes: message {body} (the seed's
// Python sample reads packet.payload.body), media {link, mime_type, filename},
// click {label, value}, location {latitude, longitude, name, address},
// forward_failed {} (seed: no payload), and start carries the payload of the
// customer's first message or upload (seed: on channels "the start event
// ... will contain a message"), or {} when there is none.
package userlike
