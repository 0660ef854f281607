import * as semconv from '@opentelemetry/semantic-conventions';
import * as incubating from '@opentelemetry/semantic-conventions/incubating';
import t from 'tap';
import { TelemetryAttributes } from '../../../src/telemetry/attributes.js';

t.test('standard attribute keys are the semantic conventions', async (t) => {
  const A = TelemetryAttributes;
  t.equal(A.messagingSystem, incubating.ATTR_MESSAGING_SYSTEM);
  t.equal(A.messagingDestinationName, incubating.ATTR_MESSAGING_DESTINATION_NAME);
  t.equal(A.messagingMessageId, incubating.ATTR_MESSAGING_MESSAGE_ID);
  t.equal(A.messagingOperationType, incubating.ATTR_MESSAGING_OPERATION_TYPE);
  t.equal(A.messagingOperationName, incubating.ATTR_MESSAGING_OPERATION_NAME);
  t.equal(A.faasInvokedName, incubating.ATTR_FAAS_INVOKED_NAME);
  t.equal(A.httpRequestMethod, semconv.ATTR_HTTP_REQUEST_METHOD);
  t.equal(A.httpResponseStatusCode, semconv.ATTR_HTTP_RESPONSE_STATUS_CODE);
  t.equal(A.httpRoute, semconv.ATTR_HTTP_ROUTE);
  t.equal(A.urlPath, semconv.ATTR_URL_PATH);
  t.equal(A.urlFull, semconv.ATTR_URL_FULL);
  t.equal(A.serverAddress, semconv.ATTR_SERVER_ADDRESS);
  t.equal(A.serverPort, semconv.ATTR_SERVER_PORT);
  t.equal(A.errorType, semconv.ATTR_ERROR_TYPE);
});

t.test('keys are unique; ours are under asyncfn.', async (t) => {
  const keys = Object.values(TelemetryAttributes);
  t.equal(new Set(keys).size, keys.length);
  for (const key of keys) {
    if (!/^(messaging|faas|http|url|server|error)\./.test(key)) t.match(key, /^asyncfn\.[a-z_]+$/);
  }
});
