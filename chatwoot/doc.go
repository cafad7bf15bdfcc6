// Package chatwoot is the Chatwoot-compatible application API: the HTTP
// adapter Chatwoot's clients (its SDK, n8n's nodes, the dashboard's calls)
// talk to, under /api/v1/accounts/{account_id}, with the caller's profile
// (/api/v1/profile), the API's health (/api), live updates as Server-Sent
// Events (…/events) and attachment downloads (/attachments/{token}/{name}).
//
// The handlers are thin: they authenticate (api_access_token), read the
// path, query and body (JSON or multipart/form-data), call one method of
// the agents' inbox (package inbox), and encode what it returns; every
// error goes through the one status table (httpapi.WriteError), in the
// default error shape. No SQL, no transactions: the inbox owns its data.
package chatwoot
