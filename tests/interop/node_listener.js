// A legacy listener as integrations build them: a node `soap` server generated from casewire's WSDL
// for an outbound-message action. It answers every `notifications` call with the Ack node soap builds
// from the WSDL, and records for the test what it received: each request as node soap typed it
// (received.json: per notification, each field's value and JavaScript type) and each raw body
// (bodies/NNN.xml, for XSD validation).
//
// Usage: node node_listener.js WSDL_FILE PORT PATH OUT_DIR
// Prints "listening on PORT" once ready.

'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const soap = require('soap');

const [wsdlFile, port, urlPath, outDir] = process.argv.slice(2);
const wsdl = fs.readFileSync(wsdlFile, 'utf8');
fs.mkdirSync(path.join(outDir, 'bodies'), { recursive: true });

const received = [];

// What a field's value looks like to a JavaScript listener: its type as node soap produced it.
function typed(value) {
  if (value instanceof Date) return { type: 'Date', value: value.toISOString() };
  if (value === null || value === undefined) return { type: String(value), value: null };
  if (typeof value === 'object') {
    // node soap keeps XML attributes (xsi:type, xsi:nil) under "attributes" and text under "$value".
    return { type: 'object', value: JSON.parse(JSON.stringify(value)) };
  }
  return { type: typeof value, value };
}

function record(args) {
  const notifications = [].concat(args.Notification || []);
  received.push({
    OrganizationId: typed(args.OrganizationId),
    ActionId: typed(args.ActionId),
    SessionId: typed(args.SessionId),
    EnterpriseUrl: typed(args.EnterpriseUrl),
    PartnerUrl: typed(args.PartnerUrl),
    notifications: notifications.map((n) => {
      const fields = {};
      for (const [name, value] of Object.entries(n.sObject || {})) {
        if (name === 'attributes') continue;
        fields[name] = typed(value);
      }
      return { Id: typed(n.Id), attributes: (n.sObject || {}).attributes || null, fields };
    }),
  });
  // Written whole each time, then renamed, so the test never reads half a file.
  const file = path.join(outDir, 'received.json');
  fs.writeFileSync(file + '.tmp', JSON.stringify(received, null, 1));
  fs.renameSync(file + '.tmp', file);
}

const service = {
  NotificationService: {
    Notification: {
      notifications(args) {
        record(args);
        return { Ack: true };
      },
    },
  },
};

let bodies = 0;
const server = http.createServer((req, res) => {
  res.statusCode = 404;
  res.end();
});
server.listen(Number(port), '127.0.0.1', () => {
  const soapServer = soap.listen(server, urlPath, service, wsdl, () => {
    console.log(`listening on ${server.address().port}`);
  });
  soapServer.log = (type, data) => {
    if (type === 'received') {
      bodies += 1;
      const name = String(bodies).padStart(3, '0') + '.xml';
      fs.writeFileSync(path.join(outDir, 'bodies', name), data);
    } else if (type === 'replied') {
      fs.writeFileSync(path.join(outDir, 'bodies', String(bodies).padStart(3, '0') + '.reply.xml'), data);
    } else if (type === 'error') {
      console.error('node soap error:', data);
    }
  };
});
