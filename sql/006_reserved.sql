-- Reserved: number 006 belongs to the hardening branch, which is merged
-- beside this one. This placeholder only keeps the numbers consecutive on the
-- consult branch (007_consultation.sql needs no part of 006); it is dropped
-- when 006 arrives.
SELECT 1;
