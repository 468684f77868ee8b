-- Admin listings filter sessions by IP address or CIDR block. The ip column holds whatever the app sent (text), so the
-- comparison goes through inet_or_null: an address that does not parse matches no filter instead of failing the query.
create function inet_or_null(value text) returns inet
  language plpgsql immutable strict parallel safe as $$
begin
  return value::inet;
exception when others then
  return null;
end
$$;
