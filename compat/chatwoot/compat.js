// Drives a running handoverd with the real @figuro/chatwoot-sdk, unchanged,
// as a Chatwoot integration would: every call must answer 2xx with
// Chatwoot's fields. Configuration comes from the environment:
//   CHATWOOT_BASE_URL   handoverd's base URL (http://127.0.0.1:8080)
//   CHATWOOT_TOKEN      an agent's api_access_token
//   CHATWOOT_ACCOUNT_ID the agent's account (default 1)
// It prints one line per step and exits non-zero on the first failure.
"use strict";

const assert = require("node:assert/strict");
const http = require("node:http");
const ChatwootClient = require("@figuro/chatwoot-sdk").default;

const base = process.env.CHATWOOT_BASE_URL;
const token = process.env.CHATWOOT_TOKEN;
const accountId = Number(process.env.CHATWOOT_ACCOUNT_ID || 1);
if (!base || !token) {
  console.error("compat: CHATWOOT_BASE_URL and CHATWOOT_TOKEN are required");
  process.exit(2);
}

const cw = new ChatwootClient({ config: { basePath: base, with_credentials: false, credentials: "omit", token } });

// A 1×1 PNG, sent as an attachment.
const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on("error", reject);
  });
}

function has(obj, what, ...keys) {
  for (const k of keys) {
    assert.ok(obj !== null && typeof obj === "object" && k in obj, `${what} lacks ${k}: ${JSON.stringify(obj)}`);
  }
}

async function step(name, fn) {
  try {
    const out = await fn();
    console.log(`ok   ${name}`);
    return out;
  } catch (err) {
    const body = err && err.body ? ` ${JSON.stringify(err.body)}` : "";
    console.error(`FAIL ${name}: ${err && err.message}${body}`);
    process.exit(1);
  }
}

(async () => {
  await step("GET /api answers (n8n's credential test)", async () => {
    const res = await get(base + "/api");
    assert.equal(res.status, 200);
    has(JSON.parse(res.body), "GET /api", "version");
  });

  const me = await step("profile", async () => {
    const p = await cw.profile.profile();
    has(p, "profile", "id", "name", "role", "accounts", "available_name");
    assert.ok(p.accounts.some((a) => a.id === accountId), `profile accounts ${JSON.stringify(p.accounts)}`);
    return p;
  });

  await step("agents.list", async () => {
    const agents = await cw.agents.list({ accountId });
    assert.ok(Array.isArray(agents));
    const a = agents.find((x) => x.id === me.id);
    assert.ok(a, `agents ${JSON.stringify(agents)} lack ${me.id}`);
    has(a, "agent", "id", "name", "role", "availability_status", "account_id");
  });

  const inbox = await step("inboxes.create (POST …/inboxes/ with a trailing slash)", async () => {
    const ib = await cw.inboxes.create({ accountId, data: { name: "SDK compat", channel: { type: "api", webhook_url: "" } } });
    has(ib, "inbox", "id", "name", "channel_type");
    assert.equal(ib.channel_type, "Channel::Api");
    return ib;
  });

  await step("inboxes.get (GET …/inboxes/{id}/)", async () => {
    const ib = await cw.inboxes.get({ accountId, id: inbox.id });
    assert.equal(ib.id, inbox.id);
    assert.equal(ib.name, "SDK compat");
  });

  const email = `sdk-${Date.now()}@example.com`;
  const created = await step("contacts.create", async () => {
    const c = await cw.contacts.create({ accountId, data: { inbox_id: inbox.id, name: "SDK Contact", email, phone_number: "+15550100", identifier: "sdk-1" } });
    has(c, "contact answer", "payload");
    has(c.payload, "payload", "contact", "contact_inbox");
    has(c.payload.contact, "payload.contact", "id", "name", "email", "phone_number", "thumbnail", "additional_attributes", "custom_attributes", "contact_inboxes");
    has(c.payload.contact_inbox, "payload.contact_inbox", "source_id", "inbox");
    assert.equal(c.payload.contact.email, email);
    assert.equal(c.payload.contact_inbox.inbox.id, inbox.id);
    // The seed's shape too: the contact's fields at the top level.
    assert.equal(c.id, c.payload.contact.id);
    assert.equal(c.contact_inboxes[0].source_id, c.payload.contact_inbox.source_id);
    return c.payload;
  });
  const contactId = created.contact.id;
  const sourceId = created.contact_inbox.source_id;

  await step("contacts.get", async () => {
    const c = await cw.contacts.get({ accountId, id: contactId });
    has(c, "contact", "payload");
    assert.equal(c.payload.id, contactId);
    assert.equal(c.payload.email, email);
  });

  await step("contacts.list", async () => {
    const l = await cw.contacts.list({ accountId, sort: "-created_at" });
    has(l, "contact list", "meta", "payload");
    has(l.meta, "contact list meta", "count", "current_page");
    assert.ok(l.payload.some((c) => c.id === contactId), "the new contact is not listed");
  });

  await step("contacts.search", async () => {
    const l = await cw.contacts.search({ accountId, q: email.toUpperCase() });
    assert.deepEqual(l.payload.map((c) => c.id), [contactId]);
    assert.equal(l.meta.count, 1);
  });

  await step("contacts.filter", async () => {
    const l = await cw.contacts.filter({ accountId, payload: [{ attribute_key: "email", filter_operator: "equal_to", values: [email], query_operator: null }] });
    assert.deepEqual(l.payload.map((c) => c.id), [contactId]);
    const none = await cw.contacts.filter({ accountId, payload: [{ attribute_key: "name", filter_operator: "contains", values: ["no such name"], query_operator: null }] });
    assert.equal(none.payload.length, 0);
  });

  await step("contact inboxes create", async () => {
    const ci = await cw.contact.create({ accountId, id: contactId, data: { inbox_id: inbox.id, source_id: `sdk-second-${Date.now()}` } });
    has(ci, "contact inbox", "source_id", "inbox");
    assert.equal(ci.inbox.id, inbox.id);
  });

  await step("contact.getContactable", async () => {
    const l = await cw.contact.getContactable({ accountId, id: contactId });
    const mine = l.payload.find((ci) => ci.inbox.id === inbox.id);
    assert.ok(mine, `contactable inboxes ${JSON.stringify(l.payload)} lack ${inbox.id}`);
    assert.equal(mine.source_id, sourceId);
  });

  const conv = await step("conversations.create from the contact's source_id", async () => {
    const c = await cw.conversations.create({ accountId, data: { source_id: sourceId, inbox_id: inbox.id, contact_id: contactId, status: "open", additional_attributes: { channel: "sdk" } } });
    has(c, "conversation", "id", "uuid", "inbox_id", "status", "labels", "unread_count", "can_reply", "additional_attributes", "messages", "meta", "contact_inbox");
    assert.equal(c.status, "open");
    assert.equal(c.additional_attributes.channel, "sdk");
    return c;
  });

  await step("messages.create incoming (multipart)", async () => {
    const m = await cw.messages.create({ accountId, conversationId: conv.id, data: { content: "hello from the SDK", message_type: "incoming", private: false } });
    has(m, "message", "id", "content", "message_type", "content_type", "created_at", "private", "sender", "conversation_id");
    assert.equal(m.message_type, 0);
    assert.equal(m.sender.type, "contact");
    assert.equal(m.conversation_id, conv.id);
  });

  await step("messages.create outgoing with an attachment (multipart)", async () => {
    const m = await cw.messages.create({
      accountId, conversationId: conv.id,
      data: { content: "here is your receipt", message_type: "outgoing", private: false, attachments: [{ content: png, encoding: "base64", filename: "receipt.png" }] },
    });
    assert.equal(m.message_type, 1);
    assert.equal(m.attachments.length, 1);
    const a = m.attachments[0];
    has(a, "attachment", "id", "message_id", "file_type", "data_url", "thumb_url", "file_size", "extension");
    assert.equal(a.file_type, "image");
    assert.equal(a.extension, "png");
    assert.equal(a.message_id, m.id);
    const res = await get(a.data_url);
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "image/png");
    assert.ok(res.body.equals(Buffer.from(png, "base64")), "the served attachment differs from the one sent");
  });

  await step("messages.create private note", async () => {
    const m = await cw.messages.create({ accountId, conversationId: conv.id, data: { content: "VIP, be nice", message_type: "outgoing", private: true } });
    assert.equal(m.private, true);
    assert.equal(m.sender.id, me.id);
  });

  await step("messages.list", async () => {
    const l = await cw.messages.list({ accountId, conversationId: conv.id });
    has(l, "message list", "meta", "payload");
    assert.deepEqual(l.payload.map((m) => [m.message_type, m.private]), [[0, false], [1, false], [1, true]]);
  });

  await step("conversationLabels.add and list", async () => {
    const added = await cw.conversationLabels.add({ accountId, conversationId: conv.id, data: { labels: ["vip", "billing"] } });
    assert.deepEqual(added.payload, ["billing", "vip"]);
    const listed = await cw.conversationLabels.list({ accountId, conversationId: conv.id });
    assert.deepEqual(listed.payload, ["billing", "vip"]);
  });

  await step("conversations.list by labels and q", async () => {
    const l = await cw.conversations.list({ accountId, status: "open", labels: ["vip"], q: "HELLO from" });
    has(l, "conversation list", "data");
    has(l.data, "conversation list data", "meta", "payload");
    assert.deepEqual(l.data.payload.map((c) => c.id), [conv.id]);
    assert.equal(l.data.meta.all_count, 1);
    const none = await cw.conversations.list({ accountId, status: "open", labels: ["no-such-label"] });
    assert.equal(none.data.payload.length, 0);
    const byInbox = await cw.conversations.list({ accountId, status: "all", inboxId: inbox.id });
    assert.deepEqual(byInbox.data.payload.map((c) => c.id), [conv.id]);
  });

  await step("conversations.getMeta", async () => {
    const m = await cw.conversations.getMeta({ accountId, status: "open", inboxId: inbox.id });
    has(m, "meta answer", "meta");
    has(m.meta, "meta", "mine_count", "unassigned_count", "assigned_count", "all_count");
    assert.equal(m.meta.all_count, 1);
    assert.equal(m.meta.unassigned_count, 1);
  });

  await step("conversations.filter", async () => {
    const l = await cw.conversations.filter({
      accountId,
      payload: [
        { attribute_key: "labels", filter_operator: "equal_to", values: ["vip"], query_operator: "and" },
        { attribute_key: "inbox_id", filter_operator: "equal_to", values: [inbox.id], query_operator: null },
      ],
    });
    has(l, "filter answer", "meta", "payload");
    assert.deepEqual(l.payload.map((c) => c.id), [conv.id]);
  });

  await step("conversationAssignment.assign to an agent", async () => {
    const a = await cw.conversationAssignment.assign({ accountId, conversationId: conv.id, data: { assignee_id: me.id } });
    assert.equal(a.id, me.id);
  });

  const team = await step("teams.list", async () => {
    const teams = await cw.teams.list({ accountId });
    assert.ok(teams.length > 0, "no teams");
    has(teams[0], "team", "id", "name", "description", "allow_auto_assign", "account_id", "is_member");
    return teams[0];
  });

  await step("conversationAssignment.assign to a team keeps the assignee", async () => {
    const t = await cw.conversationAssignment.assign({ accountId, conversationId: conv.id, data: { team_id: team.id } });
    assert.equal(t.id, team.id);
    const c = await cw.conversations.get({ accountId, conversationId: conv.id });
    assert.equal(c.meta.assignee.id, me.id);
    assert.equal(c.meta.team.id, team.id);
    const mine = await cw.conversations.list({ accountId, status: "open", assigneeType: "me", teamId: team.id });
    assert.deepEqual(mine.data.payload.map((x) => x.id), [conv.id]);
  });

  await step("conversations.get", async () => {
    const c = await cw.conversations.get({ accountId, conversationId: conv.id });
    has(c, "conversation", "id", "uuid", "labels", "unread_count", "can_reply", "additional_attributes", "messages", "meta", "status", "timestamp");
    assert.equal(c.uuid, conv.uuid);
    assert.deepEqual(c.labels, ["billing", "vip"]);
    assert.equal(c.unread_count, 1);
    assert.equal(c.can_reply, true);
    assert.ok(c.messages.length > 0);
  });

  await step("conversations.toggleStatus", async () => {
    const t = await cw.conversations.toggleStatus({ accountId, conversationId: conv.id, data: { status: "resolved" } });
    assert.equal(t.payload.current_status, "resolved");
    const c = await cw.conversations.get({ accountId, conversationId: conv.id });
    assert.equal(c.status, "resolved");
  });

  await step("contacts.listConversations", async () => {
    const l = await cw.contacts.listConversations({ accountId, id: contactId });
    assert.deepEqual(l.payload.map((c) => c.id), [conv.id]);
  });

  console.log("compat: all steps passed");
})();
