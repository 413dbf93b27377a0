/** A response read whole: status, headers, the text, and the JSON when the text is JSON. */
export async function readResponse(response: Response) {
  const text = await response.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}
