// The `_method` reader (src/proxy/method-params.ts) without sockets: every spelling a framework
// reads as `_method`, and names it does not.
import { describe, expect, test } from "bun:test";
import { bodyKinds, bodyMethods, isMethodName, queryMethods, sniffedKinds } from "../../src/proxy/method-params.ts";

describe("_method names", () => {
  test("what PHP, Rack and the rest read as _method", () => {
    for (const name of [
      "_method",
      "_METHOD",
      "%5Fmethod",
      "%5fMETHOD",
      "_%6Dethod",
      ".method",
      "%2Emethod",
      "+_method",
      "%20_method",
      "[method",
      "_method[]",
      "_method[x]",
      "X-HTTP-Method-Override",
      "x-http-method",
      "X_Method_Override",
    ]) {
      expect(isMethodName(name), name).toBe(true);
    }
  });

  test("names that are not it", () => {
    for (const name of ["method", " method", "x-http-method-overrides", "my_method", "_methods", "__method_x", "x_method", "_metho", ""]) expect(isMethodName(name), name).toBe(false);
  });
});

describe("queryMethods", () => {
  test("every occurrence, decoded and upper-cased; ; separates too; a # does not end the query", () => {
    expect(queryMethods("/x?_method=delete")).toEqual(["DELETE"]);
    expect(queryMethods("/x?a=1&_method=GET&_METHOD=%44ELETE")).toEqual(["GET", "DELETE"]);
    expect(queryMethods("/x?a=1;_method=+put+")).toEqual(["PUT"]);
    expect(queryMethods("/x?_method")).toEqual([""]);
    expect(queryMethods("/x?a=%zz&_method=%")).toEqual(["%"]);
    expect(queryMethods("/x?a=1#&_method=DELETE")).toEqual(["DELETE"]);
    expect(queryMethods("/x")).toEqual([]);
  });
});

describe("bodies", () => {
  test("kinds by Content-Type, every type a list names; a POST without one is a form", () => {
    expect(bodyKinds("application/x-www-form-urlencoded; charset=utf-8", "POST")).toEqual(["form"]);
    expect(bodyKinds("Multipart/Form-Data; boundary=x", "PUT")).toEqual(["multipart"]);
    expect(bodyKinds("application/vnd.api+json", "PATCH")).toEqual(["json"]);
    expect(bodyKinds(["text/plain", "application/json"], "POST")).toEqual(["json"]);
    expect(bodyKinds(undefined, "POST")).toEqual(["form"]);
    expect(bodyKinds(undefined, "PUT")).toEqual([]);
    expect(bodyKinds("text/plain", "POST")).toEqual([]);
    // JSON is any type with json in it, as Laravel's isJson() reads it.
    for (const type of ["text/json", "application/jsonfoo", "text/plain; x=/json", "text/plain; charset=+json", "TEXT/JSON"]) expect(bodyKinds(type, "POST"), type).toEqual(["json"]);
    expect(sniffedKinds("image/png", "PUT")).toEqual(["json", "form"]);
    expect(sniffedKinds("multipart/form-data; boundary=x", "POST")).toEqual(["multipart", "json", "form"]);
  });

  test("a form's, a multipart part's (any value) and a JSON object's top-level _method", () => {
    expect(bodyMethods(Buffer.from("a=1&_method=delete"), "form")).toEqual(["DELETE"]);
    const multipart = "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--b\r\ncontent-disposition: form-data; name*=utf-8''%5Fmethod\r\n\r\nPOST\r\n--b--\r\n";
    expect(bodyMethods(Buffer.from(multipart), "multipart")).toEqual(["?"]);
    expect(bodyMethods(Buffer.from('--b\r\nContent-Disposition: form-data; name="file"; filename="my_method.txt"\r\n\r\nx\r\n--b--'), "multipart")).toEqual([]);
    expect(bodyMethods(Buffer.from('{"\\u005fmethod":"delete","x":1}'), "json")).toEqual(["DELETE"]);
    // Repeated (JSON.parse keeps the last, a server may keep the first) or deeper down: `?`.
    expect(bodyMethods(Buffer.from('{"_method":"DELETE","_method":"POST"}'), "json")).toEqual(["POST", "?"]);
    expect(bodyMethods(Buffer.from('{"x":{"_method":"PUT"}}'), "json")).toEqual(["?"]);
    expect(bodyMethods(Buffer.from('{"x":"\\"_method\\": no"}'), "json")).toEqual([]);
    expect(bodyMethods(Buffer.from('{"_method":["DELETE"]}'), "json")).toEqual(["?"]);
    expect(bodyMethods(Buffer.from('["_method"]'), "json")).toEqual([]);
    expect(bodyMethods(Buffer.from("not json _method"), "json")).toEqual([]);
  });
});
